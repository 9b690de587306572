//! Hostile bytes never panic: arbitrary datagrams, arbitrary payloads under a valid tag (so
//! they reach the codec and foca), and mutations of real traffic.

use super::super::sim::{Sim, addr};
use super::super::{Action, Auth, Input, Membership, NodeId, Timing, auth};
use super::cluster::capture_traffic;
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::Instant;

fn member(auth: Auth) -> Membership {
    let id = NodeId {
        node: "node-000".into(),
        addr: addr(0),
        boot: 1,
    };
    let mut m = Membership::new(id, auth, Timing::default(), 7).unwrap();
    // Knows a few peers, so handled data can change things.
    m.handle(Instant::now(), Input::SetSeeds(vec![addr(1), addr(2)]));
    m
}

/// Real datagrams of a small cluster (sealed with the simulation's secret).
fn traffic() -> &'static [Vec<u8>] {
    static WIRE: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    WIRE.get_or_init(|| {
        let mut sim = Sim::new(5, &Timing::default());
        sim.seed_all();
        sim.run_until(std::time::Duration::from_secs(5), Sim::converged)
            .expect("converges");
        capture_traffic(&mut sim)
    })
}

fn feed(m: &mut Membership, bytes: &[u8]) -> Vec<Action> {
    m.handle(
        Instant::now(),
        Input::Datagram {
            from: addr(1),
            bytes,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let mut m = member(Auth::secret(b"0123456789abcdef").unwrap());
        let before = m.counters();
        let actions = feed(&mut m, &bytes);
        let after = m.counters();
        // Without the key nothing gets through.
        prop_assert_eq!(after.accepted, before.accepted);
        prop_assert_eq!(after.bad_auth + after.malformed, before.bad_auth + before.malformed + 1);
        prop_assert!(actions.is_empty());
    }

    #[test]
    fn arbitrary_authentic_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let auth = Auth::insecure();
        let mut m = member(auth.clone());
        let before = m.counters();
        feed(&mut m, &auth.seal(&payload));
        let after = m.counters();
        prop_assert_eq!(after.bad_auth, before.bad_auth);
        prop_assert_eq!(after.accepted + after.malformed, before.accepted + before.malformed + 1);
    }

    #[test]
    fn mutated_real_traffic_never_panics(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let wire = traffic();
        let datagram = &wire[pick.index(wire.len())];
        let mut payload = datagram[auth::OVERHEAD..].to_vec();
        for (at, byte) in &edits {
            if !payload.is_empty() {
                let i = at.index(payload.len());
                payload[i] = *byte;
            }
        }
        let keep = cut.index(payload.len() + 1);
        payload.truncate(keep.max(payload.len() / 2));
        let auth = Auth::secret(b"sixteen-byte-secret-for-the-sim!").unwrap();
        let mut m = member(auth.clone());
        feed(&mut m, &auth.seal(&payload));
        // Also the untouched datagram, which must be accepted or harmlessly refused.
        feed(&mut m, datagram);
        let c = m.counters();
        prop_assert_eq!(c.bad_auth, 0);
    }
}
