//! Hold-down: the state machine with explicit instants, and how the election ranks a node it
//! holds down.

use super::*;
use std::time::{Duration, Instant};

#[test]
fn a_held_down_node_is_a_last_resort() {
    let c = base()
        .nodes(&["n1", "n2"])
        .service("web", &[IP], false)
        .ready_on("web", &["n1"]);
    let s = c.snapshot("n1");
    let natural = owner(&all_alive(&s), IP);
    let other = if natural == "n1" { "n2" } else { "n1" };
    let held = |n: &str| {
        if n == natural {
            Liveness::HeldDown
        } else {
            Liveness::Alive
        }
    };
    assert_eq!(owner(&elect(&s, None, held), IP), other);
    let only = |n: &str| if n == other { Liveness::Dead } else { held(n) };
    assert_eq!(owner(&elect(&s, None, only), IP), natural);
}

#[test]
fn hold_down_delays_a_returning_node() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let mut h = HoldDown::new(Duration::from_secs(10));
    assert!(h.eligible("n1", at(0)), "never seen dead: eligible at once");
    h.alive("n1", at(0));
    assert!(h.eligible("n1", at(0)));
    assert_eq!(h.next_change(at(0)), None);
    h.dead("n1", at(1));
    assert!(!h.eligible("n1", at(1)));
    assert_eq!(h.liveness("n1", false, at(1)), Liveness::Dead);
    assert_eq!(h.next_change(at(1)), None, "dead: nothing to wait for");
    h.alive("n1", at(5));
    h.alive("n1", at(8)); // a repeat does not restart the hold-down
    assert!(!h.eligible("n1", at(14)));
    assert_eq!(h.liveness("n1", true, at(14)), Liveness::HeldDown);
    assert_eq!(h.next_change(at(5)), Some(at(15)));
    assert!(h.eligible("n1", at(15)));
    assert_eq!(h.liveness("n1", true, at(15)), Liveness::Alive);
    assert_eq!(h.next_change(at(15)), None);
    // Dies during a hold-down: it restarts from the next return.
    h.dead("n1", at(20));
    h.alive("n1", at(21));
    h.dead("n1", at(22));
    h.alive("n1", at(30));
    assert!(!h.eligible("n1", at(39)));
    assert!(h.eligible("n1", at(40)));
    // Several nodes: the earliest expiry first; forgetting a node clears it.
    h.dead("n2", at(40));
    h.dead("n3", at(40));
    h.alive("n2", at(42));
    h.alive("n3", at(41));
    assert_eq!(h.next_change(at(42)), Some(at(51)));
    h.forget("n3");
    assert_eq!(h.next_change(at(42)), Some(at(52)));
    assert!(h.eligible("n3", at(42)));
    // Alive by the caller's sources but not yet reported back: held down, not eligible.
    h.dead("n4", at(42));
    assert_eq!(h.liveness("n4", true, at(43)), Liveness::HeldDown);
}

#[test]
fn a_zero_hold_down_never_holds() {
    let t0 = Instant::now();
    let mut h = HoldDown::new(Duration::ZERO);
    h.dead("n1", t0);
    h.alive("n1", t0);
    assert!(h.eligible("n1", t0));
    assert_eq!(h.next_change(t0), None);
    assert_eq!(h.hold(), Duration::ZERO);
}
