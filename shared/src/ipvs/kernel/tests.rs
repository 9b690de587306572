use super::*;
use crate::ipvs::fixtures::{self, table};
use crate::ipvs::model::{Proto, RealServer};
use crate::ipvs::scheduler::SchedulerKind;

/// A real server on port 7000 of `weight`.
fn rs(addr: &str, weight: u32) -> RealServer {
    RealServer {
        weight,
        ..fixtures::rs(addr, 7000)
    }
}

/// A virtual server on port 80.
fn vs(addr: &str, scheduler: SchedulerKind, servers: Vec<RealServer>) -> VirtualServer {
    fixtures::vs(addr, 80, scheduler, servers)
}

/// The held real server at `addr`, port 7000, of virtual server `id`.
fn held_dest<'a>(
    held: &'a mut BTreeMap<ServiceId, Held>,
    id: &ServiceId,
    addr: &str,
) -> &'a mut HeldDest {
    let at = (addr.parse::<IpAddr>().unwrap(), 7000);
    held.get_mut(id).unwrap().dests.get_mut(&at).unwrap()
}

/// What the kernel would hold after carrying out `wanted` exactly (with its HASHED flag),
/// with `connections` on every real server.
fn held_as(wanted: &BTreeMap<ServiceId, Wanted>, connections: u32) -> BTreeMap<ServiceId, Held> {
    wanted
        .iter()
        .map(|(id, w)| {
            let mut service = w.service.clone();
            service.flags |= KERNEL_FLAGS;
            let dests = w
                .dests
                .iter()
                .map(|(at, d)| {
                    (
                        *at,
                        HeldDest {
                            dest: *d,
                            connections,
                        },
                    )
                })
                .collect();
            (*id, Held { service, dests })
        })
        .collect()
}

fn names(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| match r {
            Request::Service(cmd, s) => format!("{cmd:?} {} {}", s.id, s.scheduler),
            Request::Dest(cmd, id, d) => format!("{cmd:?} {id} {} w{}", d.addr, d.weight),
        })
        .collect()
}

#[test]
fn the_wanted_table_follows_the_model() {
    let mut sticky = vs(
        "fd00:96::1",
        SchedulerKind::Sh,
        vec![rs("fd00:244:1::11", 2)],
    );
    sticky.affinity = Some(Duration::from_secs(10800));
    sticky.scheduler_flags = "port,fallback".parse().unwrap();
    let mut dropping = vs("10.96.0.2", SchedulerKind::Rr, vec![rs("10.244.1.11", 1)]);
    dropping.drop = true;
    let w = wanted(&table(vec![sticky, dropping]));
    let got: Vec<(String, String, u32, u32, u32, usize)> = w
        .values()
        .map(|w| {
            let s = &w.service;
            (
                s.id.to_string(),
                s.scheduler.clone(),
                s.flags,
                s.timeout,
                s.netmask,
                w.dests.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("tcp/10.96.0.2:80".into(), "rr".into(), 0, 0, u32::MAX, 0),
            (
                "tcp/[fd00:96::1]:80".into(),
                "sh".into(),
                SVC_F_PERSISTENT | SVC_F_SCHED1 | SVC_F_SCHED2,
                10800,
                128,
                1
            ),
        ]
    );
    let d = w.values().nth(1).unwrap().dests.values().next().unwrap();
    assert_eq!((d.weight, d.fwd), (2, 0));
}

#[test]
fn from_nothing_then_nothing_to_do() {
    let now = Instant::now();
    let w = wanted(&table(vec![vs(
        "10.96.0.1",
        SchedulerKind::Lc,
        vec![rs("10.244.1.11", 1), rs("10.244.2.11", 3)],
    )]));
    let mut draining = Draining::default();
    let owned = BTreeSet::new();
    let requests = plan(&w, &BTreeMap::new(), &owned, &mut draining, now);
    assert_eq!(
        names(&requests),
        [
            "NewService tcp/10.96.0.1:80 lc",
            "NewDest tcp/10.96.0.1:80 10.244.1.11 w1",
            "NewDest tcp/10.96.0.1:80 10.244.2.11 w3",
        ]
    );
    // The kernel's HASHED flag, and the timeout/netmask it keeps without persistence, are
    // no difference.
    let mut held = held_as(&w, 0);
    held.values_mut().for_each(|h| h.service.netmask = 0);
    assert!(plan(&w, &held, &owned, &mut draining, now).is_empty());
}

#[test]
fn changes_are_single_requests() {
    let now = Instant::now();
    let before = wanted(&table(vec![vs(
        "10.96.0.1",
        SchedulerKind::Rr,
        vec![rs("10.244.1.11", 1)],
    )]));
    let after = wanted(&table(vec![vs(
        "10.96.0.1",
        SchedulerKind::Wrr,
        vec![rs("10.244.1.11", 5), rs("10.244.3.11", 1)],
    )]));
    let mut draining = Draining::default();
    let requests = plan(
        &after,
        &held_as(&before, 0),
        &BTreeSet::new(),
        &mut draining,
        now,
    );
    assert_eq!(
        names(&requests),
        [
            "SetService tcp/10.96.0.1:80 wrr",
            "SetDest tcp/10.96.0.1:80 10.244.1.11 w5",
            "NewDest tcp/10.96.0.1:80 10.244.3.11 w1",
        ]
    );
}

#[test]
fn a_leaving_real_server_drains_before_it_is_deleted() {
    let t0 = Instant::now();
    let two = wanted(&table(vec![vs(
        "10.96.0.1",
        SchedulerKind::Rr,
        vec![rs("10.244.1.11", 1), rs("10.244.2.11", 1)],
    )]));
    let one = wanted(&table(vec![vs(
        "10.96.0.1",
        SchedulerKind::Rr,
        vec![rs("10.244.1.11", 1)],
    )]));
    let owned = BTreeSet::new();
    let mut draining = Draining::default();
    // Weight 0 first: established connections go on, no new one comes.
    let mut held = held_as(&two, 4);
    let requests = plan(&one, &held, &owned, &mut draining, t0);
    assert_eq!(
        names(&requests),
        ["SetDest tcp/10.96.0.1:80 10.244.2.11 w0"]
    );
    assert_eq!(draining.next_deadline(), Some(t0 + DRAIN_LIMIT));
    let id = *one.keys().next().unwrap();
    held_dest(&mut held, &id, "10.244.2.11").dest.weight = 0;
    // Still connections: it waits.
    assert!(
        plan(
            &one,
            &held,
            &owned,
            &mut draining,
            t0 + Duration::from_secs(5)
        )
        .is_empty()
    );
    // Its last connection closed: deleted.
    held_dest(&mut held, &id, "10.244.2.11").connections = 0;
    let requests = plan(
        &one,
        &held,
        &owned,
        &mut draining,
        t0 + Duration::from_secs(6),
    );
    assert_eq!(
        names(&requests),
        ["DelDest tcp/10.96.0.1:80 10.244.2.11 w0"]
    );
    assert!(draining.is_empty());

    // Connections that never close: deleted at the limit.
    let mut draining = Draining::default();
    let mut held = held_as(&two, 4);
    plan(&one, &held, &owned, &mut draining, t0);
    held_dest(&mut held, &id, "10.244.2.11").dest.weight = 0;
    assert!(plan(&one, &held, &owned, &mut draining, t0 + DRAIN_LIMIT / 2).is_empty());
    let requests = plan(&one, &held, &owned, &mut draining, t0 + DRAIN_LIMIT);
    assert_eq!(
        names(&requests),
        ["DelDest tcp/10.96.0.1:80 10.244.2.11 w0"]
    );

    // Back while draining: its weight is restored and the drain forgotten.
    let mut draining = Draining::default();
    plan(&one, &held_as(&two, 4), &owned, &mut draining, t0);
    let requests = plan(
        &two,
        &held,
        &owned,
        &mut draining,
        t0 + Duration::from_secs(1),
    );
    assert_eq!(
        names(&requests),
        ["SetDest tcp/10.96.0.1:80 10.244.2.11 w1"]
    );
    assert!(draining.is_empty());
}

#[test]
fn udp_and_sctp_real_servers_go_at_once() {
    for proto in [Proto::Udp, Proto::Sctp] {
        let with = |servers: Vec<RealServer>| {
            let mut v = vs("10.96.0.53", SchedulerKind::Rr, servers);
            v.key.proto = proto;
            wanted(&table(vec![v]))
        };
        let two = with(vec![rs("10.244.1.11", 1), rs("10.244.2.11", 1)]);
        let one = with(vec![rs("10.244.1.11", 1)]);
        let mut draining = Draining::default();
        let requests = plan(
            &one,
            &held_as(&two, 4),
            &BTreeSet::new(),
            &mut draining,
            Instant::now(),
        );
        assert_eq!(
            names(&requests),
            [format!("DelDest {proto}/10.96.0.53:80 10.244.2.11 w1")]
        );
        assert!(draining.is_empty());
    }
}

#[test]
fn only_what_ferrolb_owns_is_deleted() {
    let now = Instant::now();
    let ours = wanted(&table(vec![vs("10.96.0.1", SchedulerKind::Rr, vec![])]));
    let theirs = wanted(&table(vec![vs("192.0.2.1", SchedulerKind::Rr, vec![])]));
    let mut held = held_as(&ours, 0);
    held.extend(held_as(&theirs, 0));
    let ours_id = *ours.keys().next().unwrap();
    let mut draining = Draining::default();
    // Nothing wanted any more: ours goes, theirs stays.
    let owned: BTreeSet<ServiceId> = [ours_id].into();
    let requests = plan(&BTreeMap::new(), &held, &owned, &mut draining, now);
    assert_eq!(names(&requests), ["DelService tcp/10.96.0.1:80 rr"]);
}

#[test]
fn recorded_requests_give_what_the_kernel_would_hold() {
    let now = Instant::now();
    let mut draining = Draining::default();
    let owned = BTreeSet::new();
    let steps = [
        wanted(&table(vec![vs(
            "10.96.0.1",
            SchedulerKind::Rr,
            vec![rs("10.244.1.11", 1)],
        )])),
        wanted(&table(vec![
            vs("10.96.0.1", SchedulerKind::Lc, vec![rs("10.244.2.11", 2)]),
            vs("10.96.0.2", SchedulerKind::Sh, vec![rs("10.244.1.11", 1)]),
        ])),
        wanted(&table(vec![vs("10.96.0.2", SchedulerKind::Sh, vec![])])),
    ];
    let mut held = BTreeMap::new();
    let owned_all: BTreeSet<ServiceId> = steps.iter().flat_map(|w| w.keys().copied()).collect();
    for w in &steps {
        for _ in 0..2 {
            // Twice: the leaving real servers drain (weight 0) and then go, as no connection
            // is recorded.
            for r in plan(w, &held, &owned_all, &mut draining, now) {
                record(&mut held, &r);
            }
        }
        assert_eq!(
            held,
            held_as(w, 0)
                .into_iter()
                .map(|(id, mut h)| {
                    h.service.flags &= !KERNEL_FLAGS;
                    (id, h)
                })
                .collect::<BTreeMap<_, _>>()
        );
        assert!(plan(w, &held, &owned, &mut draining, now).is_empty());
    }
}

#[test]
fn a_plan_over_part_of_the_table_leaves_the_rest_alone() {
    let t0 = Instant::now();
    let both = wanted(&table(vec![
        vs(
            "10.96.0.1",
            SchedulerKind::Rr,
            vec![rs("10.244.1.11", 1), rs("10.244.2.11", 1)],
        ),
        vs("10.96.0.2", SchedulerKind::Rr, vec![rs("10.244.1.12", 1)]),
    ]));
    let held = held_as(&both, 3);
    let owned: BTreeSet<ServiceId> = both.keys().copied().collect();
    let (first, second) = (*both.keys().next().unwrap(), *both.keys().nth(1).unwrap());
    let mut draining = Draining::default();
    // 10.96.0.1 loses an endpoint: it drains.
    let mut one = both.clone();
    one.get_mut(&first).unwrap().dests.pop_last();
    plan(&one, &held, &owned, &mut draining, t0);
    assert_eq!(draining.services(), [first].into());
    // A plan about 10.96.0.2 alone sees nothing to do and keeps 10.96.0.1's drain.
    let part_wanted: BTreeMap<_, _> = [(second, both[&second].clone())].into();
    let part_held: BTreeMap<_, _> = [(second, held[&second].clone())].into();
    assert!(plan(&part_wanted, &part_held, &owned, &mut draining, t0).is_empty());
    assert_eq!(draining.services(), [first].into());
}
