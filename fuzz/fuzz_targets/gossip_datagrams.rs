//! Any bytes a peer sends to the gossip port: rejected by the authentication (unsealed) or,
//! sealed with the key as a compromised or buggy peer would, decoded by the membership core.
//! Never a panic; the core keeps answering afterwards.
#![no_main]

use ferrolb_shared::l2::gossip::{Auth, Input, Membership, NodeId, Timing};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let id = NodeId {
        node: "node1".into(),
        addr: "10.100.0.11:7946".parse().unwrap(),
        boot: 1,
    };
    let mut m = Membership::new(id, Auth::insecure(), Timing::default(), 7).unwrap();
    let now = Instant::now();
    let from = "10.100.0.12:7946".parse().unwrap();
    // As it arrives (almost always fails authentication) and sealed (reaches the decoder).
    let _ = m.handle(now, Input::Datagram { from, bytes: data });
    let sealed = Auth::insecure().seal(data);
    let _ = m.handle(
        now + Duration::from_millis(1),
        Input::Datagram {
            from,
            bytes: &sealed,
        },
    );
    assert!(m.alive_nodes().contains("node1"));
});
