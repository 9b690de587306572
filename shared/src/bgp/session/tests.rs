//! Sessions wired back to back through an in-memory TCP with a virtual clock (`Sim`), and
//! single sessions driven by hand for the error paths.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use proptest::prelude::*;

use super::*;
use crate::bgp::codec::notification::{code, open_error};
use crate::bgp::codec::{Capability, Ipv6NextHop, Open, Update, decode};

const AS_A: u32 = 64512;
const AS_B: u32 = 4_200_000_000;
const ID_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ID_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OPTS: CodecOptions = CodecOptions {
    four_octet_as: true,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config_a() -> SessionConfig {
    SessionConfig::new(AS_A, PeerAs::Fixed(AS_B), ID_A)
}

fn config_b() -> SessionConfig {
    SessionConfig {
        hold_time: secs(30),
        passive: true,
        ..SessionConfig::new(AS_B, PeerAs::Dynamic, ID_B)
    }
}

/// An owned [`Input`].
#[derive(Clone, Debug)]
enum Ev {
    Start,
    Stop,
    Connected(ConnId),
    Accepted(ConnId),
    Failed,
    Closed(ConnId),
    Bytes(ConnId, Vec<u8>),
    Timer(TimerKind),
    Advertise(Vec<(IpNet, Attributes)>),
    Withdraw(Vec<IpNet>),
    BfdDown,
}

impl Ev {
    fn input(&self) -> Input<'_> {
        match self {
            Ev::Start => Input::Start,
            Ev::Stop => Input::Stop,
            Ev::Connected(c) => Input::TcpConnected(*c),
            Ev::Accepted(c) => Input::TcpAccepted(*c),
            Ev::Failed => Input::TcpFailed,
            Ev::Closed(c) => Input::TcpClosed(*c),
            Ev::Bytes(c, b) => Input::Bytes(*c, b),
            Ev::Timer(t) => Input::Timer(*t),
            Ev::Advertise(r) => Input::Advertise(r.clone()),
            Ev::Withdraw(p) => Input::Withdraw(p.clone()),
            Ev::BfdDown => Input::BfdDown,
        }
    }
}

/// Two sessions and the network between them.
struct Sim {
    now: Instant,
    nodes: [Session; 2],
    timers: [HashMap<TimerKind, Instant>; 2],
    queue: VecDeque<(usize, Ev)>,
    open_conns: HashSet<ConnId>,
    next_conn: u64,
    /// Every action, with when and by whom.
    log: Vec<(Instant, usize, Action)>,
    /// The network drops everything (bytes vanish, connects fail).
    cut: bool,
}

impl Sim {
    fn new(a: SessionConfig, b: SessionConfig) -> Sim {
        let now = Instant::now();
        Sim {
            now,
            nodes: [
                Session::new(a, 1).expect("config a"),
                Session::new(b, 2).expect("config b"),
            ],
            timers: [HashMap::new(), HashMap::new()],
            queue: VecDeque::new(),
            open_conns: HashSet::new(),
            next_conn: 1,
            log: Vec::new(),
            cut: false,
        }
    }

    /// Both started, run for `t`.
    fn started(a: SessionConfig, b: SessionConfig, t: Duration) -> Sim {
        let mut sim = Sim::new(a, b);
        sim.push(0, Ev::Start);
        sim.push(1, Ev::Start);
        sim.run_for(t);
        sim
    }

    fn push(&mut self, node: usize, ev: Ev) {
        self.queue.push_back((node, ev));
    }

    fn deliver(&mut self, node: usize, ev: &Ev) {
        let actions = self.nodes[node].handle(self.now, ev.input());
        for action in actions {
            self.carry_out(node, &action);
            self.log.push((self.now, node, action));
        }
    }

    fn carry_out(&mut self, node: usize, action: &Action) {
        let peer = 1 - node;
        match action {
            Action::Connect => {
                if self.cut {
                    self.push(node, Ev::Failed);
                } else {
                    let id = ConnId(self.next_conn);
                    self.next_conn += 1;
                    self.open_conns.insert(id);
                    self.push(node, Ev::Connected(id));
                    self.push(peer, Ev::Accepted(id));
                }
            }
            Action::Send(c, bytes) => {
                if !self.cut && self.open_conns.contains(c) {
                    self.push(peer, Ev::Bytes(*c, bytes.clone()));
                }
            }
            Action::Close(c) => {
                // A partitioned peer does not hear the close.
                if self.open_conns.remove(c) && !self.cut {
                    self.push(peer, Ev::Closed(*c));
                }
            }
            Action::Schedule { timer, at } => {
                self.timers[node].insert(*timer, *at);
            }
            Action::Cancel(timer) => {
                self.timers[node].remove(timer);
            }
            Action::Established | Action::Down { .. } => {}
        }
    }

    fn run_for(&mut self, t: Duration) {
        let end = self.now + t;
        loop {
            while let Some((node, ev)) = self.queue.pop_front() {
                self.deliver(node, &ev);
            }
            let next = (0..2)
                .flat_map(|n| self.timers[n].iter().map(move |(k, at)| (*at, n, *k)))
                .filter(|(at, _, _)| *at <= end)
                .min_by_key(|(at, n, _)| (*at, *n));
            let Some((at, node, timer)) = next else {
                break;
            };
            self.timers[node].remove(&timer);
            self.now = self.now.max(at);
            self.deliver(node, &Ev::Timer(timer));
        }
        self.now = end;
    }

    /// Feeds one event now and runs until quiet.
    fn inject(&mut self, node: usize, ev: Ev) {
        self.push(node, ev);
        self.run_for(Duration::ZERO);
    }

    fn state(&self, node: usize) -> State {
        self.nodes[node].state()
    }

    /// The messages `node` sent (since log index `from`).
    fn sent(&self, node: usize, from: usize) -> Vec<Message> {
        let mut out = Vec::new();
        for (_, n, action) in self.log.iter().skip(from) {
            if let (true, Action::Send(_, bytes)) = (*n == node, action) {
                let mut buf = bytes.as_slice();
                while let Ok(Some((m, len))) = decode(buf, &OPTS) {
                    out.push(m);
                    buf = buf.get(len..).unwrap_or_default();
                }
            }
        }
        out
    }

    fn notifications(&self, node: usize) -> Vec<(u8, u8)> {
        self.sent(node, 0)
            .into_iter()
            .filter_map(|m| match m {
                Message::Notification(n) => Some((n.code, n.subcode)),
                _ => None,
            })
            .collect()
    }

    fn actions(&self, node: usize, from: usize) -> Vec<&Action> {
        self.log
            .iter()
            .skip(from)
            .filter(|(_, n, _)| *n == node)
            .map(|(_, _, a)| a)
            .collect()
    }
}

fn v4_routes(n: u32) -> Vec<(IpNet, Attributes)> {
    let attrs = Attributes {
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ..Attributes::default()
    };
    (0..n)
        .map(|i| {
            let addr = Ipv4Addr::from(0x0a00_0000 + i);
            (IpNet::new(addr.into(), 32).expect("prefix"), attrs.clone())
        })
        .collect()
}

fn v6_route() -> (IpNet, Attributes) {
    let attrs = Attributes {
        mp_next_hop: Some(Ipv6NextHop {
            global: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            link_local: None,
        }),
        ..Attributes::default()
    };
    ("2001:db8:1::1/128".parse().expect("prefix"), attrs)
}

fn updates(messages: &[Message]) -> Vec<&Update> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect()
}

#[test]
fn back_to_back_sessions_establish_with_the_expected_capabilities() {
    let sim = Sim::started(config_a(), config_b(), secs(1));
    assert_eq!(sim.state(0), State::Established);
    assert_eq!(sim.state(1), State::Established);
    let neg = sim.nodes[0].negotiated().expect("negotiated");
    assert_eq!(neg.peer_as, AS_B);
    assert_eq!(neg.peer_router_id, ID_B);
    assert_eq!(neg.hold_time, secs(30));
    assert_eq!(neg.keepalive_time, secs(10));
    assert!(neg.four_octet_as && neg.route_refresh && !neg.graceful_restart);
    assert_eq!(
        neg.families,
        vec![(Afi::IPV4, Safi::UNICAST), (Afi::IPV6, Safi::UNICAST)]
    );
    assert_eq!(sim.nodes[1].negotiated().expect("b").peer_as, AS_A);
    assert_eq!(
        sim.actions(0, 0)
            .iter()
            .filter(|a| ***a == Action::Established)
            .count(),
        1
    );
}

#[test]
fn keepalives_keep_the_session_up() {
    let mut sim = Sim::started(config_a(), config_b(), secs(1));
    sim.run_for(secs(600));
    for n in 0..2 {
        assert_eq!(sim.state(n), State::Established);
        assert_eq!(sim.nodes[n].counters().established_transitions, 1);
        assert!(sim.nodes[n].counters().keepalives_received >= 59);
    }
    assert!(sim.notifications(0).is_empty() && sim.notifications(1).is_empty());
}

#[test]
fn silence_expires_the_hold_timer_then_reconnects_with_backoff() {
    let mut sim = Sim::started(config_a(), config_b(), secs(1));
    sim.cut = true;
    let from = sim.log.len();
    sim.run_for(secs(31));
    assert!(
        sim.notifications(0)
            .contains(&(code::HOLD_TIMER_EXPIRED, 0))
    );
    assert!(
        sim.notifications(1)
            .contains(&(code::HOLD_TIMER_EXPIRED, 0))
    );
    assert!(matches!(
        sim.nodes[0].counters().last_error,
        Some(DownReason::NotificationSent(ref n)) if n.code == code::HOLD_TIMER_EXPIRED
    ));
    assert!(
        sim.actions(0, from)
            .iter()
            .any(|a| matches!(a, Action::Down { .. }))
    );
    // The network stays down: each retry waits about twice as long as the one before.
    sim.run_for(secs(300));
    let retries: Vec<Duration> = sim
        .log
        .iter()
        .skip(from)
        .filter_map(|(t, n, a)| match a {
            Action::Schedule {
                timer: TimerKind::ConnectRetry,
                at,
            } if *n == 0 => Some(*at - *t),
            _ => None,
        })
        .collect();
    assert!(retries.len() >= 4, "{retries:?}");
    for pair in retries.windows(2).take(4) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b > a, "backoff must grow: {retries:?}");
    }
    assert!(retries.iter().all(|d| *d <= DEFAULT_MAX_CONNECT_RETRY));
    // The network heals: the session comes back and the backoff resets.
    sim.cut = false;
    sim.run_for(secs(130));
    assert_eq!(sim.state(0), State::Established);
    assert_eq!(sim.nodes[0].consecutive_failures(), 0);
}

/// A session with an open outbound connection 1 in OpenSent.
fn open_sent() -> (Session, Instant, Vec<Action>) {
    let now = Instant::now();
    let mut s = Session::new(config_a(), 3).expect("config");
    s.handle(now, Input::Start);
    let actions = s.handle(now, Input::TcpConnected(ConnId(1)));
    assert_eq!(s.state(), State::OpenSent);
    (s, now, actions)
}

/// The NOTIFICATION sent on conn 1 before it was closed, asserting the order.
fn notification_then_close(actions: &[Action]) -> Option<Notification> {
    let close = actions
        .iter()
        .position(|a| *a == Action::Close(ConnId(1)))?;
    actions.get(..close)?.iter().rev().find_map(|a| match a {
        Action::Send(ConnId(1), bytes) => match decode(bytes, &OPTS) {
            Ok(Some((Message::Notification(n), _))) => Some(n),
            _ => None,
        },
        _ => None,
    })
}

#[test]
fn garbage_gets_a_header_error_and_a_reset() {
    let (mut s, now, _) = open_sent();
    let actions = s.handle(now, Input::Bytes(ConnId(1), &[0u8; 40]));
    let n = notification_then_close(&actions).expect("notification");
    assert_eq!((n.code, n.subcode), (code::MESSAGE_HEADER_ERROR, 1));
    assert_eq!(s.state(), State::Active);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Schedule {
            timer: TimerKind::ConnectRetry,
            ..
        }
    )));
    // A bad length, in a fresh connection.
    let actions = s.handle(now, Input::Timer(TimerKind::ConnectRetry));
    assert!(actions.contains(&Action::Connect));
    s.handle(now, Input::TcpConnected(ConnId(2)));
    let mut bad = vec![0xff; 16];
    bad.extend_from_slice(&[0, 5, 4]);
    let actions = s.handle(now, Input::Bytes(ConnId(2), &bad));
    assert!(actions.contains(&Action::Close(ConnId(2))));
    assert_eq!(s.counters().notifications_sent, 2);
}

#[test]
fn a_wrong_peer_as_gets_bad_peer_as() {
    let b = SessionConfig {
        peer_as: PeerAs::Fixed(65000),
        ..config_b()
    };
    let sim = Sim::started(config_a(), b, secs(1));
    assert!(
        sim.notifications(1)
            .contains(&(code::OPEN_MESSAGE_ERROR, open_error::BAD_PEER_AS))
    );
    assert_ne!(sim.state(0), State::Established);
}

#[test]
fn open_errors_get_their_notifications() {
    let open = |f: &dyn Fn(&mut Open)| {
        let mut o = Open {
            version: 4,
            my_as: AS_B,
            hold_time: 90,
            router_id: ID_B,
            capabilities: vec![Capability::FourOctetAs(AS_B)],
        };
        f(&mut o);
        encode(&Message::Open(o), &OPTS)
    };
    let mut version = open(&|_| {});
    version[19] = 3;
    let mut hold = open(&|_| {});
    hold[22..24].copy_from_slice(&[0, 2]);
    let ibgp_same_id = {
        let mut s =
            Session::new(SessionConfig::new(AS_A, PeerAs::Fixed(AS_A), ID_A), 1).expect("config");
        let now = Instant::now();
        s.handle(now, Input::Start);
        s.handle(now, Input::TcpConnected(ConnId(1)));
        let bytes = open(&|o| {
            o.my_as = AS_A;
            o.router_id = ID_A;
            o.capabilities = vec![Capability::FourOctetAs(AS_A)];
        });
        notification_then_close(&s.handle(now, Input::Bytes(ConnId(1), &bytes)))
    };
    assert_eq!(
        ibgp_same_id.map(|n| n.subcode),
        Some(open_error::BAD_BGP_IDENTIFIER)
    );
    for (bytes, subcode, data) in [
        (version, open_error::UNSUPPORTED_VERSION_NUMBER, vec![0, 4]),
        (hold, open_error::UNACCEPTABLE_HOLD_TIME, vec![]),
        (
            open(&|o| {
                o.my_as = 65001;
                o.capabilities = vec![Capability::FourOctetAs(65001)];
            }),
            open_error::BAD_PEER_AS,
            vec![],
        ),
    ] {
        let (mut s, now, _) = open_sent();
        let n = notification_then_close(&s.handle(now, Input::Bytes(ConnId(1), &bytes)));
        assert_eq!(
            n,
            Some(Notification::new(code::OPEN_MESSAGE_ERROR, subcode, data))
        );
    }
}

#[test]
fn a_required_four_octet_as_capability_gets_unsupported_capability() {
    let now = Instant::now();
    let config = SessionConfig {
        require_four_octet_as: true,
        peer_as: PeerAs::Fixed(65001),
        ..config_a()
    };
    let mut s = Session::new(config, 1).expect("config");
    s.handle(now, Input::Start);
    s.handle(now, Input::TcpConnected(ConnId(1)));
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 90,
        router_id: ID_B,
        capabilities: vec![],
    };
    let bytes = encode(&Message::Open(open), &OPTS);
    let n = notification_then_close(&s.handle(now, Input::Bytes(ConnId(1), &bytes)));
    let mut data = vec![65, 4];
    data.extend_from_slice(&AS_A.to_be_bytes());
    assert_eq!(
        n,
        Some(Notification::new(
            code::OPEN_MESSAGE_ERROR,
            open_error::UNSUPPORTED_CAPABILITY,
            data
        ))
    );
}

#[test]
fn unexpected_messages_get_fsm_errors() {
    let (mut s, now, _) = open_sent();
    let keepalive = encode(&Message::Keepalive, &OPTS);
    let n = notification_then_close(&s.handle(now, Input::Bytes(ConnId(1), &keepalive)));
    assert_eq!(n, Some(Notification::fsm(1)));
    // An OPEN once Established.
    let (mut s, now, _) = open_sent();
    s.handle(now, Input::Bytes(ConnId(1), &peer_open_and_keepalive()));
    assert_eq!(s.state(), State::Established);
    let open = peer_open_and_keepalive();
    let n = notification_then_close(&s.handle(now, Input::Bytes(ConnId(1), &open)));
    assert_eq!(n, Some(Notification::fsm(3)));
}

/// An UPDATE announcing 10.0.0.0/24 with the given ORIGIN value and NLRI bytes.
fn raw_update(origin: u8, nlri: &[u8]) -> Vec<u8> {
    let attrs = [
        0x40, 1, 1, origin, // ORIGIN
        0x40, 2, 0, // AS_PATH (empty)
        0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP
    ];
    let mut body = vec![0, 0];
    body.extend_from_slice(&u16::try_from(attrs.len()).expect("len").to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(nlri);
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&u16::try_from(19 + body.len()).expect("len").to_be_bytes());
    msg.push(2);
    msg.extend(body);
    msg
}

#[test]
fn update_errors_withdraw_or_reset_as_rfc_7606_says() {
    let (mut s, now, _) = open_sent();
    s.handle(now, Input::Bytes(ConnId(1), &peer_open_and_keepalive()));
    // A bad ORIGIN: treat as withdraw, the session stays up.
    let mut bytes = raw_update(7, &[24, 10, 0, 0]);
    bytes.extend(raw_update(0, &[24, 10, 0, 1]));
    let actions = s.handle(now, Input::Bytes(ConnId(1), &bytes));
    assert!(!actions.contains(&Action::Close(ConnId(1))), "{actions:?}");
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.counters().updates_treated_as_withdraw, 1);
    assert_eq!(s.counters().updates_received, 2);
    assert_eq!(s.counters().prefixes_received, 1);
    // A prefix longer than 32 bits: the NLRI cannot be trusted, reset with 3/10.
    let actions = s.handle(
        now,
        Input::Bytes(ConnId(1), &raw_update(0, &[33, 10, 0, 0, 0, 0])),
    );
    let n = notification_then_close(&actions).expect("notification");
    assert_eq!((n.code, n.subcode), (code::UPDATE_MESSAGE_ERROR, 10));
    assert!(actions.iter().any(|a| matches!(a, Action::Down { .. })));
}

#[test]
fn silence_before_the_open_expires_the_large_hold_timer() {
    let (mut s, now, actions) = open_sent();
    assert!(actions.contains(&Action::Schedule {
        timer: TimerKind::Hold(ConnId(1)),
        at: now + LARGE_HOLD_TIME,
    }));
    let later = now + LARGE_HOLD_TIME;
    let actions = s.handle(later, Input::Timer(TimerKind::Hold(ConnId(1))));
    let n = notification_then_close(&actions).expect("notification");
    assert_eq!(n, Notification::hold_timer_expired());
    // A stale timer of a closed connection does nothing.
    assert!(
        s.handle(later, Input::Timer(TimerKind::Hold(ConnId(1))))
            .is_empty()
    );
}

#[test]
fn collision_detection_keeps_exactly_one_connection() {
    let b = SessionConfig {
        passive: false,
        ..config_b()
    };
    let sim = Sim::started(config_a(), b, secs(5));
    assert_eq!(sim.state(0), State::Established);
    assert_eq!(sim.state(1), State::Established);
    assert_eq!(sim.nodes[0].connections().len(), 1);
    assert_eq!(sim.nodes[0].connections(), sim.nodes[1].connections());
    // Two connections were made; the one B (the higher id) opened survived.
    assert_eq!(sim.next_conn, 3);
    let cease = (code::CEASE, cease::CONNECTION_COLLISION_RESOLUTION);
    let collisions = sim
        .notifications(0)
        .iter()
        .chain(sim.notifications(1).iter())
        .filter(|n| **n == cease)
        .count();
    assert!(collisions >= 1);
    assert_eq!(sim.nodes[0].counters().established_transitions, 1);
}

#[test]
fn a_second_connection_while_established_is_refused() {
    let (mut s, now, _) = open_sent();
    s.handle(now, Input::Bytes(ConnId(1), &peer_open_and_keepalive()));
    let actions = s.handle(now, Input::TcpAccepted(ConnId(9)));
    let cease = Notification::cease(cease::CONNECTION_REJECTED);
    assert_eq!(
        actions,
        vec![
            Action::Send(ConnId(9), encode(&Message::Notification(cease), &OPTS)),
            Action::Close(ConnId(9)),
        ]
    );
    assert_eq!(s.connections(), vec![ConnId(1)]);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn routes_are_sent_once_established_packed_and_followed_by_end_of_rib() {
    let mut sim = Sim::new(config_a(), config_b());
    let mut routes = v4_routes(10_000);
    routes.push(v6_route());
    sim.push(0, Ev::Advertise(routes));
    sim.run_for(secs(1));
    assert!(sim.sent(0, 0).is_empty(), "nothing before Start");
    sim.push(0, Ev::Start);
    sim.push(1, Ev::Start);
    sim.run_for(secs(1));
    assert_eq!(sim.state(0), State::Established);
    assert_eq!(sim.nodes[1].counters().prefixes_received, 10_001);
    assert_eq!(sim.nodes[0].prefixes_advertised(), 10_001);
    let sent = sim.sent(0, 0);
    let ups = updates(&sent);
    assert!(ups.len() < 20, "{} UPDATEs", ups.len());
    // The last two are the End-of-RIB markers, IPv4 then IPv6.
    let eors: Vec<_> = ups.iter().filter_map(|u| u.end_of_rib_family()).collect();
    assert_eq!(
        eors,
        vec![(Afi::IPV4, Safi::UNICAST), (Afi::IPV6, Safi::UNICAST)]
    );
    assert!(ups[ups.len() - 2].is_end_of_rib() && ups[ups.len() - 1].is_end_of_rib());
    // The same route again: nothing to send.
    let from = sim.log.len();
    sim.inject(0, Ev::Advertise(v4_routes(1)));
    assert!(sim.sent(0, from).is_empty());
    // Withdrawals and a change go as differences.
    let gone: Vec<IpNet> = v4_routes(100).into_iter().map(|(p, _)| p).collect();
    sim.inject(0, Ev::Withdraw(gone.clone()));
    let sent = sim.sent(0, from);
    let ups = updates(&sent);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].withdrawn, gone);
    assert_eq!(sim.nodes[0].prefixes_advertised(), 9_901);
    let from = sim.log.len();
    let mut changed = v4_routes(200);
    for (_, a) in &mut changed {
        a.med = Some(5);
    }
    sim.inject(0, Ev::Advertise(changed));
    let sent = sim.sent(0, from);
    let ups = updates(&sent);
    assert_eq!(ups.iter().map(|u| u.nlri.len()).sum::<usize>(), 200);
    assert_eq!(
        sim.nodes[0].counters().updates_sent,
        sim.nodes[1].counters().updates_received
    );
}

#[test]
fn route_refresh_resends_the_table() {
    let mut sim = Sim::new(config_a(), config_b());
    sim.push(0, Ev::Advertise(v4_routes(50)));
    sim.push(0, Ev::Start);
    sim.push(1, Ev::Start);
    sim.run_for(secs(1));
    let conn = sim.nodes[0].established_connection().expect("conn");
    let from = sim.log.len();
    let request = Message::RouteRefresh {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
        subtype: 0,
    };
    sim.inject(0, Ev::Bytes(conn, encode(&request, &OPTS)));
    let sent = sim.sent(0, from);
    assert_eq!(
        updates(&sent).iter().map(|u| u.nlri.len()).sum::<usize>(),
        50
    );
    assert_eq!(sim.nodes[0].counters().route_refreshes_received, 1);
    assert_eq!(sim.state(0), State::Established);
}

#[test]
fn graceful_restart_sets_r_after_a_marked_restart_and_f_always() {
    let gr = |restarting| SessionConfig {
        graceful_restart: Some(GracefulRestart { restart_time: 120 }),
        restarting,
        ..config_a()
    };
    // (R, restart time, F of every family) of the first OPEN node 0 sent since `from`.
    let r_bit = |sim: &Sim, from: usize| {
        sim.sent(0, from).iter().find_map(|m| match m {
            Message::Open(o) => o.capabilities.iter().find_map(|c| match c {
                Capability::GracefulRestart {
                    restart_state,
                    restart_time,
                    families,
                    ..
                } => {
                    assert!(!families.is_empty(), "GR without families: {families:?}");
                    let f = families.iter().all(|(_, _, f)| *f);
                    Some((*restart_state, *restart_time, f))
                }
                _ => None,
            }),
            _ => None,
        })
    };
    let b = SessionConfig {
        graceful_restart: Some(GracefulRestart { restart_time: 60 }),
        ..config_b()
    };
    let mut sim = Sim::started(gr(true), b.clone(), secs(1));
    assert_eq!(r_bit(&sim, 0), Some((true, 120, true)));
    assert!(sim.nodes[0].negotiated().expect("neg").graceful_restart);
    // A later reconnect is no restart, and forwarding still survived it (F).
    let from = sim.log.len();
    sim.inject(0, Ev::BfdDown);
    sim.run_for(secs(10));
    assert_eq!(sim.state(0), State::Established);
    assert_eq!(r_bit(&sim, from), Some((false, 120, true)));
    let sim = Sim::started(gr(false), b, secs(1));
    assert_eq!(r_bit(&sim, 0), Some((false, 120, true)));
}

#[test]
fn stop_sends_administrative_shutdown() {
    let mut sim = Sim::started(config_a(), config_b(), secs(1));
    let from = sim.log.len();
    sim.inject(0, Ev::Stop);
    assert_eq!(
        sim.notifications(0),
        vec![(code::CEASE, cease::ADMINISTRATIVE_SHUTDOWN)]
    );
    assert_eq!(sim.state(0), State::Idle);
    assert!(sim.actions(1, from).iter().any(|a| matches!(
        a,
        Action::Down {
            reason: DownReason::NotificationReceived(n)
        } if n.subcode == cease::ADMINISTRATIVE_SHUTDOWN
    )));
    // Stopped stays stopped.
    sim.run_for(secs(600));
    assert_eq!(sim.state(0), State::Idle);
    assert_eq!(sim.state(1), State::Active);
}

#[test]
fn bfd_down_tears_down_at_once() {
    let mut sim = Sim::started(config_a(), config_b(), secs(1));
    let from = sim.log.len();
    sim.push(0, Ev::BfdDown);
    let ev = sim.queue.pop_back().expect("ev");
    sim.deliver(0, &ev.1);
    let actions = sim.actions(0, from);
    assert!(matches!(actions.first(), Some(Action::Send(..))));
    assert!(actions.iter().any(|a| matches!(a, Action::Down { .. })));
    assert_eq!(sim.notifications(0), vec![(code::CEASE, cease::BFD_DOWN)]);
    assert_eq!(sim.state(0), State::Active);
}

#[test]
fn config_validation() {
    let bad_hold = SessionConfig {
        hold_time: secs(2),
        ..config_a()
    };
    assert_eq!(
        Session::new(bad_hold, 0).err(),
        Some(ConfigError::HoldTime(secs(2)))
    );
    let zero = SessionConfig {
        hold_time: Duration::ZERO,
        ..config_a()
    };
    assert!(Session::new(zero, 0).is_ok());
}

/// A valid OPEN from B and its KEEPALIVE, taking a session to Established.
fn peer_open_and_keepalive() -> Vec<u8> {
    let open = Open {
        version: 4,
        my_as: AS_B,
        hold_time: 90,
        router_id: ID_B,
        capabilities: vec![Capability::FourOctetAs(AS_B)],
    };
    let mut bytes = encode(&Message::Open(open), &OPTS);
    bytes.extend(encode(&Message::Keepalive, &OPTS));
    bytes
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        established in any::<bool>(),
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
    ) {
        let (mut s, now, _) = open_sent();
        if established {
            s.handle(now, Input::Bytes(ConnId(1), &peer_open_and_keepalive()));
            prop_assert_eq!(s.state(), State::Established);
        }
        let mut closed = false;
        for chunk in &chunks {
            let actions = s.handle(now, Input::Bytes(ConnId(1), chunk));
            if closed {
                prop_assert!(actions.is_empty());
                prop_assert_eq!(s.state(), State::Active);
            } else if actions.contains(&Action::Close(ConnId(1))) {
                closed = true;
                prop_assert!(notification_then_close(&actions).is_some());
                prop_assert_eq!(s.state(), State::Active);
                prop_assert!(s.connections().is_empty());
            } else {
                prop_assert!(matches!(
                    s.state(),
                    State::OpenSent | State::OpenConfirm | State::Established
                ));
            }
        }
    }
}
