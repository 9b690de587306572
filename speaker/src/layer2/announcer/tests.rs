//! Unit tests of the announcer's pure parts: planning, the reply decision, multicast group
//! bookkeeping, the announcement frames, and the control thread without sockets. The real
//! sockets are exercised by `speaker/tests/announcer_netns.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::time::Instant;

use ferrolb_shared::l2::election::Interfaces;
use ferrolb_shared::l2::packet::{
    ArpOperation, ArpPacket, Frame, MacAddr, Message, NeighborSolicitation, parse_frame,
    solicited_node_multicast,
};

use super::bucket::RateLimiter;
use super::state::{self, OwnedState};
use super::worker::{group_changes, respond};
use super::*;
use crate::layer2::interfaces::{Interface, Link, Unusable};

const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 200));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x200));
const OTHER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 201));

fn link(index: u32, name: &str) -> Link {
    Link {
        index,
        name: name.into(),
        link_type: 1,
        flags: 0x1 | 0x2 | 0x40 | 0x1_0000,
        mac: Some(MacAddr([2, 0, 0, 0, 1, index as u8])),
        master: None,
        operstate: Some(6),
        carrier: Some(true),
    }
}

fn named(names: &[&str]) -> Interfaces {
    Interfaces::Named(names.iter().map(|n| n.to_string()).collect())
}

fn links() -> Vec<Link> {
    let mut down = link(3, "eth1");
    down.flags = 0x2;
    vec![link(1, "eth0"), down, link(4, "eth2")]
}

#[test]
fn plan_places_addresses_on_their_interfaces() {
    let owned = BTreeMap::from([
        (V4, Interfaces::All),
        (V6, named(&["eth2"])),
        (OTHER_V4, named(&["eth1", "gone"])),
    ]);
    let plan = state::plan(&owned, &links());
    let placed: BTreeMap<&str, Vec<IpAddr>> = plan
        .interfaces
        .iter()
        .map(|(n, (_, ips))| (n.as_str(), ips.iter().copied().collect()))
        .collect();
    assert_eq!(
        placed,
        BTreeMap::from([("eth0", vec![V4]), ("eth2", vec![V4, V6])])
    );
    assert_eq!(
        plan.unusable,
        BTreeMap::from([
            ((OTHER_V4, "eth1".to_string()), Unusable::Down),
            ((OTHER_V4, "gone".to_string()), Unusable::NotFound),
        ])
    );
    assert_eq!(plan.nowhere, BTreeSet::from([OTHER_V4]));
}

fn state_for(owned: &BTreeMap<IpAddr, Interfaces>, fenced: &[&str]) -> OwnedState {
    let plan = state::plan(owned, &links());
    state::build(
        owned,
        &plan,
        &OwnedState::default(),
        |_| true,
        |i: &Interface| !fenced.contains(&i.name.as_str()),
    )
}

#[test]
fn build_respects_carrier_and_available_sockets() {
    let owned = BTreeMap::from([(V4, Interfaces::All), (V6, named(&["eth2"]))]);
    let s = state_for(&owned, &["eth0"]);
    assert!(!s.is_answering("eth0", V4));
    assert!(s.lookup("eth0", V4).is_some());
    assert!(s.is_answering("eth2", V4));
    assert!(s.is_answering("eth2", V6));
    assert!(!s.is_answering("eth0", V6));
    assert!(!s.is_answering("eth1", V4));
    let pairs: Vec<_> = s.answering().into_iter().collect();
    assert_eq!(pairs, [(V4, "eth2".to_string()), (V6, "eth2".to_string())]);

    let plan = state::plan(&owned, &links());
    let no_eth2 = state::build(&owned, &plan, &s, |n| n != "eth2", |_| true);
    assert!(no_eth2.lookup("eth2", V6).is_none());
    assert!(
        no_eth2.stats.contains_key(&V6),
        "still owned, so still counted"
    );
}

#[test]
fn counters_survive_a_swap_while_the_address_stays_owned() {
    let owned = BTreeMap::from([(V4, Interfaces::All)]);
    let first = state_for(&owned, &[]);
    first.stats[&V4].replies.fetch_add(7, Ordering::Relaxed);
    let plan = state::plan(&owned, &links());
    let second = state::build(&owned, &plan, &first, |_| true, |_| true);
    assert_eq!(second.stats[&V4].replies.load(Ordering::Relaxed), 7);
    let (stats, _) = second.lookup("eth0", V4).unwrap();
    assert_eq!(stats.replies.load(Ordering::Relaxed), 7);
    let empty = state::build(&BTreeMap::new(), &plan, &second, |_| true, |_| true);
    assert!(empty.stats.is_empty());
}

fn arp_request(target: IpAddr, destination: MacAddr) -> Frame {
    let IpAddr::V4(target_ip) = target else {
        panic!("IPv4 only");
    };
    Frame {
        destination,
        source: THEM,
        vlan: None,
        message: Message::Arp(ArpPacket {
            operation: ArpOperation::Request,
            sender_mac: THEM,
            sender_ip: Ipv4Addr::new(10, 99, 0, 2),
            target_mac: MacAddr::ZERO,
            target_ip,
        }),
    }
}

fn solicitation(target: Ipv6Addr) -> Frame {
    let [.., a, b, c] = target.octets();
    Frame {
        destination: MacAddr([0x33, 0x33, 0xff, a, b, c]),
        source: THEM,
        vlan: None,
        message: Message::NeighborSolicitation(NeighborSolicitation {
            source: Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 2),
            destination: solicited_node_multicast(target),
            target,
            source_mac: Some(THEM),
        }),
    }
}

struct Harness {
    state: OwnedState,
    limiter: RateLimiter,
    global: GlobalStats,
}

impl Harness {
    fn new(owned: BTreeMap<IpAddr, Interfaces>, fenced: &[&str], rate: u32) -> Self {
        Harness {
            state: state_for(&owned, fenced),
            limiter: RateLimiter::new(rate),
            global: GlobalStats::default(),
        }
    }

    fn reply(&mut self, frame: &Frame, interface: &str) -> Option<Frame> {
        let (bytes, _) = respond(
            frame,
            interface,
            OUR_MAC,
            &self.state,
            &mut self.limiter,
            &self.global,
            Instant::now(),
        )?;
        Some(parse_frame(&bytes).expect("our reply parses"))
    }

    fn counter(&self, ip: IpAddr) -> (u64, u64) {
        let s = &self.state.stats[&ip];
        (
            s.requests.load(Ordering::Relaxed),
            s.rate_limited.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn answers_arp_for_owned_addresses_on_their_interfaces_only() {
    let owned = BTreeMap::from([(V4, named(&["eth0"])), (OTHER_V4, named(&["eth2"]))]);
    let mut h = Harness::new(owned, &[], 0);
    let reply = h
        .reply(&arp_request(V4, MacAddr::BROADCAST), "eth0")
        .expect("a reply");
    let Message::Arp(arp) = reply.message else {
        panic!("not ARP: {reply:?}");
    };
    assert_eq!(
        (arp.operation, arp.sender_mac, IpAddr::V4(arp.sender_ip)),
        (ArpOperation::Reply, OUR_MAC, V4)
    );
    assert_eq!(reply.destination, THEM);
    // Owned, but assigned to another interface.
    assert!(
        h.reply(&arp_request(V4, MacAddr::BROADCAST), "eth2")
            .is_none()
    );
    // Not owned at all.
    let unowned = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 9));
    assert!(
        h.reply(&arp_request(unowned, MacAddr::BROADCAST), "eth0")
            .is_none()
    );
    // Unicast to another host (promiscuous interface).
    assert!(h.reply(&arp_request(V4, THEM), "eth0").is_none());
    // Our own frames.
    let mut ours = arp_request(V4, MacAddr::BROADCAST);
    ours.source = OUR_MAC;
    assert!(h.reply(&ours, "eth0").is_none());
    assert_eq!(h.counter(V4), (2, 0));
}

#[test]
fn answers_neighbor_solicitations() {
    let IpAddr::V6(target) = V6 else {
        unreachable!()
    };
    let mut h = Harness::new(BTreeMap::from([(V6, Interfaces::All)]), &[], 0);
    let reply = h.reply(&solicitation(target), "eth2").expect("a reply");
    let Message::NeighborAdvertisement(na) = reply.message else {
        panic!("not an NA: {reply:?}");
    };
    assert_eq!(na.target, target);
    assert_eq!(na.target_mac, Some(OUR_MAC));
    assert!(na.flags.solicited && na.flags.override_);
    assert_eq!(reply.destination, THEM);
}

#[test]
fn a_fenced_interface_answers_nothing() {
    let mut h = Harness::new(BTreeMap::from([(V4, Interfaces::All)]), &["eth0"], 0);
    assert!(
        h.reply(&arp_request(V4, MacAddr::BROADCAST), "eth0")
            .is_none()
    );
    assert!(
        h.reply(&arp_request(V4, MacAddr::BROADCAST), "eth2")
            .is_some()
    );
    assert_eq!(h.counter(V4), (2, 0), "the fenced request still counts");
}

#[test]
fn replies_are_rate_limited_per_requester() {
    let mut h = Harness::new(BTreeMap::from([(V4, Interfaces::All)]), &[], 5);
    let replies = (0..50)
        .filter(|_| {
            h.reply(&arp_request(V4, MacAddr::BROADCAST), "eth0")
                .is_some()
        })
        .count();
    assert_eq!(replies, 10, "burst of twice the rate");
    assert_eq!(h.counter(V4), (50, 40));
    assert_eq!(h.global.rate_limited.load(Ordering::Relaxed), 40);
}

#[test]
fn solicited_node_groups_are_joined_once_and_left_when_unused() {
    let a: Ipv6Addr = "fd99::1:200".parse().unwrap();
    let b: Ipv6Addr = "fd98::1:200".parse().unwrap(); // same low 24 bits as a
    let c: Ipv6Addr = "fd99::300".parse().unwrap();
    let ga = solicited_node_multicast(a);
    let gc = solicited_node_multicast(c);
    let (join, leave) = group_changes(&BTreeSet::new(), &BTreeSet::from([a, b, c]));
    assert_eq!(join, [gc, ga]); // sorted
    assert!(leave.is_empty());
    let joined = BTreeSet::from([ga, gc]);
    // Releasing a keeps the group b still needs; releasing c leaves its group.
    let (join, leave) = group_changes(&joined, &BTreeSet::from([b]));
    assert!(join.is_empty());
    assert_eq!(leave, [gc]);
}

#[test]
fn gratuitous_frames_announce_our_mac() {
    let v4 = gratuitous_frames(OUR_MAC, V4);
    assert_eq!(v4.len(), 2);
    let ops: Vec<_> = v4
        .iter()
        .map(|f| match parse_frame(f).unwrap().message {
            Message::Arp(arp) => {
                assert_eq!((IpAddr::V4(arp.sender_ip), arp.sender_mac), (V4, OUR_MAC));
                assert_eq!(arp.sender_ip, arp.target_ip);
                arp.operation
            }
            other => panic!("not ARP: {other:?}"),
        })
        .collect();
    assert_eq!(ops, [ArpOperation::Request, ArpOperation::Reply]);
    let v6 = gratuitous_frames(OUR_MAC, V6);
    let Message::NeighborAdvertisement(na) = parse_frame(&v6[0]).unwrap().message else {
        panic!("not an NA");
    };
    assert!(na.flags.override_ && !na.flags.solicited);
    assert_eq!(IpAddr::V6(na.target), V6);
}

/// The control thread without any socket: addresses on interfaces that do not exist are
/// counted but answered nowhere, and shutdown is prompt.
#[test]
fn control_thread_without_usable_interfaces() {
    let announcer = Announcer::new(AnnouncerConfig::default());
    announcer.set_owned(BTreeMap::from([(V4, named(&["flb-no-such0"]))]));
    assert!(announcer.answering().is_empty());
    let counters = announcer.counters();
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0].ip, V4);
    announcer.set_carrier("flb-no-such0", false);
    announcer.set_owned(BTreeMap::new());
    assert!(announcer.counters().is_empty());
    assert_eq!(announcer.global_counters(), GlobalCounters::default());
    let started = Instant::now();
    announcer.shutdown();
    assert!(started.elapsed().as_secs() < 2);
}

#[test]
fn default_config() {
    let c = AnnouncerConfig::default();
    assert_eq!(c.gratuitous_repeats, 3);
    assert_eq!(c.gratuitous_interval.as_millis(), 200);
    assert_eq!(c.refresh, None);
    assert_eq!(c.reply_rate_per_source, 50);
}

#[test]
fn answers_stop_when_the_lease_runs_out() {
    let lease = Lease::default();
    let now = Instant::now();
    assert!(
        lease.valid(now + Duration::from_secs(3600)),
        "never renewed: no limit"
    );
    lease.renew(now + Duration::from_millis(500));
    assert!(lease.valid(now));
    assert!(lease.valid(now + Duration::from_millis(499)));
    assert!(!lease.valid(now + Duration::from_millis(500)));
    assert!(
        !lease.valid(now + Duration::from_secs(5)),
        "a frozen process resumes fenced"
    );
    lease.renew(now + Duration::from_secs(6));
    assert!(lease.valid(now + Duration::from_secs(5)));
}
