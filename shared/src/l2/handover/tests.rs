use super::*;
use crate::l2::election::elect;
use crate::l2::election::tests::fixture::Cluster;
use std::collections::BTreeSet;

const IP: &str = "192.0.2.10";

fn cluster(nodes: &[&str]) -> Cluster {
    Cluster::new()
        .pool("main", &["192.0.2.0/24"])
        .l2("all", &["main"], "[]", &[])
        .nodes(nodes)
        .service("web", &[IP], false)
        .ready_on("web", &["a", "b", "c"])
}

fn ip() -> IpAddr {
    IP.parse().unwrap()
}

/// The election among the `alive` nodes.
fn election(nodes: &[&str], alive: &[&str]) -> Election {
    let snapshot = cluster(nodes).snapshot("a");
    elect(&snapshot, None, |n| alive.contains(&n).into())
}

#[test]
fn an_ip_nobody_had_is_taken_at_once_and_released_at_once() {
    let now = Instant::now();
    let e = election(&["a"], &["a"]);
    let mut h = Handover::new("a", DEFAULT_DELAY);
    let c = h.update(now, &e, |_| true);
    assert_eq!(c.acquired, vec![ip()]);
    assert!(h.owned().contains_key(&ip()));
    let nobody = election(&["a"], &[]);
    let c = h.update(now, &nobody, |_| true);
    assert_eq!(c.released, vec![ip()]);
    assert!(h.owned().is_empty());
}

#[test]
fn failover_from_a_dead_owner_is_immediate_and_a_planned_move_waits() {
    let now = Instant::now();
    let all = election(&["a", "b"], &["a", "b"]);
    let owner = all.assignments[&ip()].node.clone();
    let other = if owner == "a" { "b" } else { "a" };
    // The other node follows the election while the owner lives.
    let mut h = Handover::new(other, DEFAULT_DELAY);
    assert!(h.update(now, &all, |_| true).is_empty());
    // The owner dies: the other takes over in the same instant.
    let without = election(&["a", "b"], &[other]);
    let c = h.update(now, &without, |n| n == other);
    assert_eq!(c.acquired, vec![ip()]);
    // The owner returns and wins the election again: the other lets go at once...
    let c = h.update(now, &all, |_| true);
    assert_eq!(c.released, vec![ip()]);
    // ... while the returning owner, taking over from a live node, waits for it.
    let mut back = Handover::new(owner.as_str(), DEFAULT_DELAY);
    back.update(now, &without, |_| true);
    let c = back.update(now, &all, |_| true);
    assert!(c.acquired.is_empty(), "{c:?}");
    assert_eq!(back.next_deadline(), Some(now + DEFAULT_DELAY));
    assert_eq!(back.pending().collect::<Vec<_>>(), vec![&ip()]);
    let early = back.update(now + DEFAULT_DELAY / 2, &all, |_| true);
    assert!(early.acquired.is_empty());
    let c = back.update(now + DEFAULT_DELAY, &all, |_| true);
    assert_eq!(c.acquired, vec![ip()]);
    assert_eq!(back.next_deadline(), None);
}

#[test]
fn the_two_sides_of_a_planned_move_never_overlap() {
    // Both nodes see the move at `seen_by_old` and `seen_by_new` (up to 200 ms apart, either
    // order): the new owner answers only after the old one has stopped.
    let t0 = Instant::now();
    let before = election(&["a", "b"], &["a", "b"]);
    let owner = before.assignments[&ip()].node.clone();
    let newcomer = if owner == "a" { "b" } else { "a" };
    // The move: the owner's only endpoint leaves (Local policy would do it; here the owner is
    // excluded by election among the newcomer only, the old owner still alive).
    let after = election(&["a", "b"], &[newcomer]);
    for skew_ms in [0i64, 50, 200, -50, -200] {
        let (old_sees, new_sees) = if skew_ms >= 0 {
            (t0 + Duration::from_millis(skew_ms as u64), t0)
        } else {
            (t0, t0 + Duration::from_millis((-skew_ms) as u64))
        };
        let mut old = Handover::new(owner.as_str(), DEFAULT_DELAY);
        let mut new = Handover::new(newcomer, DEFAULT_DELAY);
        old.update(t0 - Duration::from_secs(1), &before, |_| true);
        new.update(t0 - Duration::from_secs(1), &before, |_| true);
        new.update(new_sees, &after, |_| true);
        let taken = new.next_deadline().expect("a pending takeover");
        old.update(old_sees, &after, |_| true);
        assert!(
            taken >= old_sees,
            "skew {skew_ms} ms: taken at {taken:?}, released at {old_sees:?}"
        );
        let c = new.update(taken, &after, |_| true);
        assert_eq!(c.acquired, vec![ip()]);
    }
}

#[test]
fn interface_changes_are_reported_as_moves() {
    let now = Instant::now();
    let snapshot = Cluster::new()
        .pool("main", &["192.0.2.0/24"])
        .l2("eth", &["main"], "[]", &["eth1"])
        .nodes(&["a"])
        .service("web", &[IP], false)
        .ready_on("web", &["a"])
        .snapshot("a");
    let e = elect(&snapshot, None, |_| Liveness::Alive);
    let mut h = Handover::new("a", DEFAULT_DELAY);
    h.update(now, &election(&["a"], &["a"]), |_| true);
    let c = h.update(now, &e, |_| true);
    assert_eq!(c.moved, vec![ip()]);
    assert_eq!(
        h.owned()[&ip()],
        Interfaces::Named(BTreeSet::from(["eth1".to_string()]))
    );
}

#[test]
fn liveness_combines_gossip_readiness_and_hold_down() {
    let snapshot = Cluster::new()
        .node("a")
        .node("b")
        .node("c")
        .node_with("down", "", "[{type: Ready, status: \"False\"}]")
        .node_with("up", "", "[{type: Ready, status: \"True\"}]")
        .snapshot("a");
    let members = BTreeMap::from([
        ("a".to_string(), 1_000u64),
        ("b".to_string(), 9_500),
        ("down".to_string(), 1_000),
        ("up".to_string(), 1_300),
    ]);
    let view = LivenessView {
        members: Some(&members),
        restarting: None,
        now_ms: 10_000,
        hold: Duration::from_secs(1),
    };
    assert_eq!(view.of(&snapshot, "a"), Liveness::Alive, "the oldest");
    assert_eq!(
        view.of(&snapshot, "b"),
        Liveness::HeldDown,
        "started 500 ms ago"
    );
    assert_eq!(view.of(&snapshot, "c"), Liveness::Dead, "no speaker");
    assert_eq!(view.of(&snapshot, "down"), Liveness::Dead, "Node not Ready");
    assert_eq!(
        view.of(&snapshot, "up"),
        Liveness::Alive,
        "started with the others, so not held although younger than a hold-down at first"
    );
    assert_eq!(view.of(&snapshot, "unknown"), Liveness::Dead, "no Node");
    assert_eq!(view.next_change_ms(), Some(10_500));
    // A whole cluster starting together holds nobody down: no reshuffle when it ends.
    let together = BTreeMap::from([("a".to_string(), 9_900u64), ("b".to_string(), 9_950)]);
    let fresh = LivenessView {
        members: Some(&together),
        ..view.clone()
    };
    assert_eq!(fresh.of(&snapshot, "b"), Liveness::Alive);
    assert_eq!(fresh.next_change_ms(), None);
    let no_gossip = LivenessView {
        members: None,
        ..view
    };
    assert_eq!(
        no_gossip.of(&snapshot, "c"),
        Liveness::Alive,
        "readiness only"
    );
    assert_eq!(no_gossip.of(&snapshot, "down"), Liveness::Dead);
    assert_eq!(no_gossip.next_change_ms(), None);
}

#[test]
fn a_restarting_speaker_stays_alive_until_its_deadline_and_not_after() {
    let snapshot = Cluster::new()
        .node("a")
        .node("b")
        .node_with("down", "", "[{type: Ready, status: \"False\"}]")
        .snapshot("a");
    let members = BTreeMap::from([("a".to_string(), 1_000u64)]);
    let restarting = BTreeMap::from([
        ("b".to_string(), 12_000u64),
        ("down".to_string(), 12_000),
        ("a".to_string(), 5_000),
    ]);
    let view = LivenessView {
        members: Some(&members),
        restarting: Some(&restarting),
        now_ms: 10_000,
        hold: Duration::from_secs(1),
    };
    assert_eq!(view.of(&snapshot, "b"), Liveness::Alive, "restarting");
    assert_eq!(
        view.of(&snapshot, "down"),
        Liveness::Dead,
        "a Node not Ready is dead whatever its speaker said"
    );
    assert_eq!(view.next_change_ms(), Some(12_000), "b's deadline");
    let late = LivenessView {
        now_ms: 12_000,
        ..view.clone()
    };
    assert_eq!(late.of(&snapshot, "b"), Liveness::Dead, "never came back");
    assert_eq!(late.next_change_ms(), None);
    // Back under a new incarnation that started with the others: a member like any other.
    let back = BTreeMap::from([("a".to_string(), 1_000u64), ("b".to_string(), 1_001)]);
    let only_b = BTreeMap::from([("b".to_string(), 12_000u64)]);
    let rejoined = LivenessView {
        members: Some(&back),
        restarting: Some(&only_b),
        ..view
    };
    assert_eq!(rejoined.of(&snapshot, "b"), Liveness::Alive);
    assert_eq!(
        rejoined.next_change_ms(),
        None,
        "its notice no longer matters"
    );
}
