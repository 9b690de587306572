use super::*;
use proptest::prelude::*;

fn dests(weights: &[u32]) -> Vec<Dest> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| Dest {
            id: format!("10.244.0.{}:80", i + 10),
            weight: *w,
            active: 0,
            inactive: 0,
        })
        .collect()
}

fn flow(src: u32) -> Flow {
    Flow {
        src: IpAddr::V4(std::net::Ipv4Addr::from(0xc633_6400 + src)),
        dst: "10.100.0.200".parse().unwrap(),
    }
}

fn picks(kind: SchedulerKind, d: &[Dest], n: usize) -> Vec<usize> {
    let mut s = Scheduler::new(kind, d).unwrap();
    (0..n)
        .map(|i| s.pick(&flow(i as u32), d).unwrap())
        .collect()
}

#[test]
fn names_round_trip() {
    for k in SchedulerKind::ALL {
        assert_eq!(k.name().parse::<SchedulerKind>(), Ok(k));
    }
    assert!("random".parse::<SchedulerKind>().is_err());
    let kernel: Vec<_> = SchedulerKind::ALL
        .into_iter()
        .filter(|k| !k.needs_connection_counts())
        .collect();
    assert_eq!(
        kernel,
        [
            SchedulerKind::Rr,
            SchedulerKind::Wrr,
            SchedulerKind::Sh,
            SchedulerKind::Dh,
            SchedulerKind::Mh
        ]
    );
}

#[test]
fn rr_cycles_and_skips_weight_zero() {
    assert_eq!(
        picks(SchedulerKind::Rr, &dests(&[1, 0, 3]), 5),
        [0, 2, 0, 2, 0]
    );
}

#[test]
fn wrr_follows_ip_vs_wrr() {
    // The kernel's sequence for weights 4, 3, 2: a, a b, a b c, a b c ... per lap of cw.
    assert_eq!(
        picks(SchedulerKind::Wrr, &dests(&[4, 3, 2]), 9),
        [0, 0, 1, 0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn wrr_with_no_weight_picks_nothing() {
    let d = dests(&[0, 0]);
    let mut s = Scheduler::new(SchedulerKind::Wrr, &d).unwrap();
    assert_eq!(s.pick(&flow(1), &d), None);
}

#[test]
fn least_connection_family() {
    let mut d = dests(&[1, 2, 1]);
    d[0].active = 1;
    d[1].active = 1;
    d[2].active = 2;
    let pick = |k, d: &[Dest]| Scheduler::new(k, d).unwrap().pick(&flow(1), d);
    // lc: overheads 256, 256, 512 -> the first of the two least.
    assert_eq!(pick(SchedulerKind::Lc, &d), Some(0));
    // wlc: 256/1, 256/2, 512/1 -> the weight-2 server.
    assert_eq!(pick(SchedulerKind::Wlc, &d), Some(1));
    // sed: (1+1)/1, (1+1)/2, (2+1)/1 -> the weight-2 server.
    assert_eq!(pick(SchedulerKind::Sed, &d), Some(1));
    // nq: nobody idle, so as sed; with an idle server, that one.
    assert_eq!(pick(SchedulerKind::Nq, &d), Some(1));
    d[2].active = 0;
    assert_eq!(pick(SchedulerKind::Nq, &d), Some(2));
    // Inactive connections weigh 1/256 of an active one.
    let mut e = dests(&[1, 1]);
    e[0].inactive = 255;
    e[1].active = 1;
    assert_eq!(
        Scheduler::new(SchedulerKind::Lc, &e)
            .unwrap()
            .pick(&flow(1), &e),
        Some(0)
    );
}

#[test]
fn hashing_schedulers_are_sticky_and_spread() {
    for kind in [SchedulerKind::Sh, SchedulerKind::Mh] {
        let d = dests(&[1, 1, 1, 1]);
        let first = picks(kind, &d, 400);
        assert_eq!(
            first,
            picks(kind, &d, 400),
            "{kind}: same client, same server"
        );
        for server in 0..4 {
            let n = first.iter().filter(|p| **p == server).count();
            assert!(
                (50..150).contains(&n),
                "{kind}: server {server} got {n} of 400"
            );
        }
    }
    // dh hashes the destination: every client of one destination lands on one server.
    let d = dests(&[1, 1, 1]);
    let all = picks(SchedulerKind::Dh, &d, 50);
    assert!(all.iter().all(|p| *p == all[0]));
}

#[test]
fn hashing_tables_ignore_input_order() {
    let d = dests(&[1, 2, 3, 1]);
    let mut rev = d.clone();
    rev.reverse();
    for kind in [SchedulerKind::Sh, SchedulerKind::Mh] {
        let mut a = Scheduler::new(kind, &d).unwrap();
        let mut b = Scheduler::new(kind, &rev).unwrap();
        for i in 0..200 {
            let (pa, pb) = (
                a.pick(&flow(i), &d).unwrap(),
                b.pick(&flow(i), &rev).unwrap(),
            );
            assert_eq!(d[pa].id, rev[pb].id, "{kind}: flow {i}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Over whole rounds, wrr gives each server exactly its share of picks.
    #[test]
    fn wrr_respects_weights_exactly(weights in proptest::collection::vec(0u32..8, 1..8)) {
        prop_assume!(weights.iter().any(|w| *w > 0));
        let d = dests(&weights);
        let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
        let round: usize = weights.iter().map(|w| (*w / g) as usize).sum();
        let got = picks(SchedulerKind::Wrr, &d, round * 5);
        for (i, w) in weights.iter().enumerate() {
            let n = got.iter().filter(|p| **p == i).count();
            prop_assert_eq!(n, (*w / g) as usize * 5, "server {} weight {}", i, w);
        }
    }

    /// Hashing with weights: shares of buckets follow the weights.
    #[test]
    fn sh_buckets_follow_weights(weights in proptest::collection::vec(1u32..5, 1..6)) {
        let d = dests(&weights);
        let buckets = hash_buckets(&d);
        prop_assert_eq!(buckets.len(), HASH_BUCKETS);
        let total: u32 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let n = buckets.iter().filter(|b| **b == i).count() as f64;
            let want = HASH_BUCKETS as f64 * f64::from(*w) / f64::from(total);
            prop_assert!((n - want).abs() <= f64::from(*w) + 1.0, "server {} weight {}: {} buckets, want {}", i, w, n, want);
        }
    }

    /// rr over n live servers is exactly uniform.
    #[test]
    fn rr_is_uniform(n in 1usize..10, laps in 1usize..20) {
        let d = dests(&vec![1; n]);
        let got = picks(SchedulerKind::Rr, &d, n * laps);
        for i in 0..n {
            prop_assert_eq!(got.iter().filter(|p| **p == i).count(), laps);
        }
    }
}
