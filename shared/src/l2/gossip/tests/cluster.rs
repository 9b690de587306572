//! Clusters of [`Membership`] on the simulated network ([`sim`]).

use super::super::sim::{self, Sim, addr, name};
use super::super::*;
use std::time::Duration;

/// A converged cluster of `n`, every node seeded with every address.
fn cluster(n: usize) -> Sim {
    let mut sim = Sim::new(n, &Timing::default());
    sim.seed_all();
    sim.run_until(Duration::from_secs(5), Sim::converged)
        .expect("converges");
    println!(
        "{n} members converged in {} ms (all seeded, over 100 ms)",
        sim.now.as_millis()
    );
    sim
}

/// Kill (or otherwise silence) node `k` with `silence`, and measure until every other member
/// agrees it is dead. Returns (time until the last member agreed, each member's time).
fn measure(sim: &mut Sim, k: usize, silence: impl FnOnce(&mut Sim)) -> (Duration, Vec<Duration>) {
    let t0 = sim.now;
    silence(sim);
    let all = sim
        .run_until(Duration::from_secs(5), |s| s.all_see_dead(k))
        .expect("every member agrees the node is dead");
    let mut each: Vec<Duration> = sim
        .running()
        .into_iter()
        .filter(|&i| i != k)
        .map(|i| sim.downs[&(i, name(k))] - t0)
        .collect();
    each.sort();
    (all, each)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Kill `victims` one after the other (the cluster re-converges between them) and report.
fn detection(n: usize, victims: &[usize]) -> (Duration, Duration) {
    let mut sim = cluster(n);
    let mut agreed = Vec::new();
    let mut per_member = Vec::new();
    for (trial, &k) in victims.iter().enumerate() {
        // Die at a different moment of the probe cycle each time.
        let phase = (trial as u64 * 37 + k as u64 * 61) % 100;
        sim.run_for(Duration::from_millis(phase));
        let (all, each) = measure(&mut sim, k, |s| s.kill(k));
        agreed.push(all);
        per_member.extend(each);
        sim.run_for(Duration::from_millis(500));
        assert!(sim.converged(), "the others still agree after {k} died");
    }
    let worst = *agreed.iter().max().unwrap();
    let med_all = median(&mut agreed);
    let med_each = median(&mut per_member);
    println!(
        "N={n}: SIGKILL detected by every member in median {} ms, worst {} ms \
         (median per member {} ms, {} kills)",
        med_all.as_millis(),
        worst.as_millis(),
        med_each.as_millis(),
        victims.len()
    );
    (med_all, worst)
}

#[test]
fn five_members_join_through_one_seed() {
    let mut sim = Sim::new(5, &Timing::default());
    for i in 0..5 {
        sim.seed(i, vec![addr(0)]);
    }
    let took = sim
        .run_until(Duration::from_secs(5), Sim::converged)
        .expect("converges");
    println!(
        "5 members joined through one seed in {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    for i in 0..5 {
        assert_eq!(sim.nodes[i].m.reachable_peers(), 4);
        let c = sim.nodes[i].m.counters();
        assert_eq!((c.bad_auth, c.malformed), (0, 0), "{c:?}");
    }
}

#[test]
fn a_speaker_started_later_is_found_from_either_side() {
    // The newcomer knows the others, the others do not know it yet.
    let mut sim = Sim::new(6, &Timing::default());
    for i in 0..5 {
        sim.seed(i, (0..5).map(addr).collect());
    }
    sim.run_until(Duration::from_secs(2), |s| {
        (0..5).all(|i| s.nodes[i].m.reachable_peers() == 4)
    })
    .expect("the first five converge");
    sim.seed(5, (0..6).map(addr).collect());
    let took = sim
        .run_until(Duration::from_secs(2), Sim::converged)
        .expect("found");
    println!(
        "a newcomer announcing itself was known to all after {} ms",
        took.as_millis()
    );

    // The others learn of the newcomer first (its Node object appeared), it knows nobody.
    let mut sim = Sim::new(6, &Timing::default());
    for i in 0..5 {
        sim.seed(i, (0..5).map(addr).collect());
    }
    sim.run_for(Duration::from_secs(1));
    sim.seed(5, vec![]);
    for i in 0..5 {
        sim.seed(i, (0..6).map(addr).collect());
    }
    let took = sim
        .run_until(Duration::from_secs(2), Sim::converged)
        .expect("found");
    println!(
        "a newcomer announced to by the others was known to all after {} ms",
        took.as_millis()
    );
}

#[test]
fn hundred_members_converge_and_agree_on_a_death_within_a_second() {
    let (median, worst) = detection(100, &[17, 42, 73, 5, 99, 0, 31, 64, 88, 50]);
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    assert!(median < Duration::from_millis(800), "{median:?}");
}

#[test]
fn five_members_agree_on_a_death_within_a_second() {
    // Every victim, dying at five moments of the probe cycle.
    let mut agreed = Vec::new();
    for victim in 0..5 {
        for phase in [0, 20, 40, 60, 80] {
            let mut sim = cluster(5);
            sim.run_for(Duration::from_millis(phase));
            agreed.push(measure(&mut sim, victim, |s| s.kill(victim)).0);
        }
    }
    let worst = *agreed.iter().max().unwrap();
    println!(
        "N=5: SIGKILL detected by every member in median {} ms, worst {} ms ({} kills)",
        median(&mut agreed).as_millis(),
        worst.as_millis(),
        agreed.len()
    );
    assert!(worst < Duration::from_secs(1), "{worst:?}");
}

#[test]
fn a_cut_off_member_is_declared_dead_and_rejoins_when_the_link_heals() {
    let mut sim = cluster(10);
    let k = 3;
    let (all, _) = measure(&mut sim, k, |s| {
        for j in 0..10 {
            if j != k {
                s.cut_link(k, j);
            }
        }
    });
    println!(
        "N=10: a cut-off member was declared dead by all in {} ms",
        all.as_millis()
    );
    assert!(all < Duration::from_secs(1), "{all:?}");
    // The cut-off member, for its part, finds itself alone.
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.nodes[k].m.alive_nodes(), BTreeSet::from([name(k)]));
    let boot = sim.nodes[k].m.identity().boot;
    sim.heal_all();
    let took = sim
        .run_until(Duration::from_secs(10), Sim::converged)
        .expect("heals");
    println!("N=10: partition healed in {} ms", took.as_millis());
    assert!(
        sim.nodes[k].m.identity().boot > boot,
        "rejoined under a renewed identity"
    );
}

#[test]
fn a_paused_member_declared_dead_rejoins_when_resumed() {
    let mut sim = cluster(20);
    let k = 7;
    let boot = sim.nodes[k].m.identity().boot;
    let (all, _) = measure(&mut sim, k, |s| s.pause(k));
    println!(
        "N=20: SIGSTOP detected by every member in {} ms",
        all.as_millis()
    );
    sim.run_for(Duration::from_millis(300));
    let t0 = sim.now;
    sim.resume(k);
    let took = sim
        .run_until(Duration::from_secs(5), Sim::converged)
        .expect("rejoins");
    println!(
        "N=20: resumed member alive everywhere again after {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(sim.nodes[k].m.identity().boot > boot);
    for i in sim.running().into_iter().filter(|&i| i != k) {
        assert!(sim.ups[&(i, name(k))] >= t0, "member {i} saw it come back");
    }
}

#[test]
fn a_restarted_speaker_rejoins_with_a_new_boot() {
    let mut sim = cluster(10);
    let k = 4;
    measure(&mut sim, k, |s| s.kill(k));
    sim.restart(
        k,
        Auth::secret(b"sixteen-byte-secret-for-the-sim!").unwrap(),
        Timing::default(),
        1000,
    );
    sim.seed(k, (0..10).map(addr).collect());
    let took = sim
        .run_until(Duration::from_secs(5), Sim::converged)
        .expect("rejoins");
    println!(
        "N=10: restarted member alive everywhere after {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn a_graceful_leave_is_seen_quickly() {
    let mut sim = cluster(30);
    let k = 11;
    let (all, each) = measure(&mut sim, k, |s| {
        s.input(k, Input::Leave);
        s.kill(k); // the process exits right after
    });
    println!(
        "N=30: leave seen by every member in {} ms (median {} ms)",
        all.as_millis(),
        each[each.len() / 2].as_millis()
    );
    assert!(all < Duration::from_millis(500), "{all:?}");
}

#[test]
fn leave_stops_everything() {
    let mut sim = cluster(3);
    sim.input(0, Input::Leave);
    assert!(!sim.nodes[0].m.alive_nodes().contains(&name(0)));
    let now = sim.instant();
    let m = &mut sim.nodes[0].m;
    assert!(m.handle(now, Input::SetSeeds(vec![addr(1)])).is_empty());
    let sealed = Auth::insecure().seal(b"whatever");
    let input = Input::Datagram {
        from: addr(1),
        bytes: &sealed,
    };
    assert!(m.handle(now, input).is_empty());
}

#[test]
fn a_member_with_the_wrong_key_is_dropped_counted_and_ignored() {
    let mut sim = Sim::new(6, &Timing::default());
    let intruder = 5;
    sim.restart(
        intruder,
        Auth::secret(b"not-the-cluster-secret").unwrap(),
        Timing::default(),
        1,
    );
    sim.seed_all();
    sim.run_for(Duration::from_secs(3));
    let honest: BTreeSet<String> = (0..5).map(name).collect();
    let mut dropped = 0;
    for i in 0..5 {
        assert_eq!(sim.nodes[i].m.alive_nodes(), honest, "member {i}");
        let c = sim.nodes[i].m.counters();
        assert_eq!(c.malformed, 0);
        dropped += c.bad_auth;
    }
    println!("wrong key: {dropped} datagrams dropped by the honest members");
    assert!(dropped > 0);
    let m = &sim.nodes[intruder].m;
    assert_eq!(m.alive_nodes(), BTreeSet::from([name(intruder)]));
    assert_eq!(m.counters().accepted, 0);
}

#[test]
fn hostile_bytes_are_counted_and_change_nothing() {
    let mut sim = cluster(5);
    let captured = capture_traffic(&mut sim);
    let sample: Vec<&Vec<u8>> = captured.iter().step_by(captured.len() / 40 + 1).collect();
    // Without the key: truncated and corrupted real datagrams.
    let before = sim.nodes[0].m.counters();
    let mut injected = 0;
    for bytes in &sample {
        for cut in 0..bytes.len() {
            sim.inject(0, addr(9), bytes[..cut].to_vec());
            let mut flipped = bytes.to_vec();
            flipped[cut] ^= 0xa5;
            sim.inject(0, addr(9), flipped);
            injected += 2;
        }
    }
    sim.run_for(Duration::from_secs(1));
    let after = sim.nodes[0].m.counters();
    println!("unauthenticated: {injected} injected, counters {before:?} -> {after:?}");
    assert_eq!(
        after.bad_auth + after.malformed - before.bad_auth - before.malformed,
        injected
    );
    assert!(sim.converged(), "membership unchanged");
}

#[test]
fn corrupt_authentic_payloads_never_panic_and_the_cluster_heals() {
    // What a buggy (or hostile) key holder could send: truncated and corrupted payloads under
    // a valid tag reach the codec and foca. Some decode into plausible lies (a member down);
    // the members concerned refute them and the cluster converges again.
    let mut sim = cluster(5);
    let captured = capture_traffic(&mut sim);
    let auth = Auth::secret(b"sixteen-byte-secret-for-the-sim!").unwrap();
    let before = sim.nodes[0].m.counters();
    for bytes in captured.iter().step_by(captured.len() / 40 + 1) {
        let payload = &bytes[auth::OVERHEAD..];
        for cut in 0..payload.len() {
            sim.inject(0, addr(9), auth.seal(&payload[..cut]));
            let mut flipped = payload.to_vec();
            flipped[cut] ^= 0xa5;
            sim.inject(0, addr(9), auth.seal(&flipped));
        }
    }
    sim.run_for(Duration::from_millis(100));
    let after = sim.nodes[0].m.counters();
    println!("authentic garbage: counters {before:?} -> {after:?}");
    assert!(after.malformed > before.malformed);
    assert_eq!(after.bad_auth, before.bad_auth);
    let took = sim
        .run_until(Duration::from_secs(10), Sim::converged)
        .expect("heals");
    println!(
        "authentic garbage: converged again after {} ms",
        took.as_millis()
    );
}

#[test]
fn traffic_per_member_does_not_grow_with_the_cluster() {
    let rate = |n: usize| {
        let mut sim = cluster(n);
        sim.run_for(Duration::from_secs(2));
        let before: u64 = sim.sent.iter().sum();
        let secs = 10;
        sim.run_for(Duration::from_secs(secs));
        let sent: u64 = sim.sent.iter().sum::<u64>() - before;
        assert!(sim.converged());
        assert!(
            sim.downs.is_empty(),
            "no member was ever wrongly declared down"
        );
        sent as f64 / n as f64 / secs as f64
    };
    let small = rate(10);
    let large = rate(100);
    println!("datagrams sent per member per second: N=10 {small:.1}, N=100 {large:.1}");
    assert!(large < small * 1.3, "{small} vs {large}");
    // About a ping and an ack per probe period, plus a little.
    let periods_per_second = 1.0 / Timing::default().probe_period.as_secs_f64();
    let per_period = large / periods_per_second;
    println!("datagrams sent per member per probe period: {per_period:.2}");
    assert!(per_period < 3.0, "{per_period}");
}

#[test]
fn an_idle_member_wakes_for_one_timer_per_probe_period() {
    // Each probe arms two timers: the next probe and the ack deadline. When the ack comes
    // first (always, on a healthy network) the deadline is cancelled, so an idle member's
    // only timer wake-up per period is its next probe (plus a rare announce or seed retry).
    let mut sim = cluster(5);
    sim.run_for(Duration::from_secs(2));
    let before: Vec<u64> = sim.nodes.iter().map(|n| n.timers_fired).collect();
    let secs = 10;
    sim.run_for(Duration::from_secs(secs));
    assert!(sim.converged());
    assert!(sim.downs.is_empty(), "no member was wrongly declared down");
    let periods = secs as f64 / Timing::default().probe_period.as_secs_f64();
    for (i, node) in sim.nodes.iter().enumerate() {
        let per_period = (node.timers_fired - before[i]) as f64 / periods;
        println!("member {i}: {per_period:.2} timers fired per probe period");
        assert!((1.0..1.1).contains(&per_period), "member {i}: {per_period}");
    }
}

#[test]
fn a_lost_ack_still_gets_indirect_probes_and_no_false_death() {
    // A cut link between two members: their direct pings go unanswered, so the ack deadline
    // must still fire and the indirect probes through the others keep both alive.
    let mut sim = cluster(5);
    sim.cut_link(0, 1);
    sim.run_for(Duration::from_secs(10));
    assert!(
        sim.converged(),
        "0 and 1 still see each other, through the others"
    );
    assert!(sim.downs.is_empty(), "{:?}", sim.downs);
}

#[test]
fn a_lossy_network_rarely_flaps_and_always_recovers() {
    // 5 % of all datagrams lost, for a minute: indirect probes and refutation keep false
    // deaths rare, and a member wrongly declared down is back at once.
    let mut sim = cluster(20);
    sim.loss_ppm = 50_000;
    sim.run_for(Duration::from_secs(60));
    let false_downs = sim.downs.len();
    sim.loss_ppm = 0;
    let took = sim
        .run_until(Duration::from_secs(5), Sim::converged)
        .expect("recovers");
    println!(
        "N=20, 5 % loss for 60 s: {false_downs} (observer, member) pairs saw a false death; \
         converged {} ms after the loss stopped",
        took.as_millis()
    );
    assert!(false_downs <= 2, "{false_downs}");
}

#[test]
fn seeds_that_never_answer_cost_a_bounded_trickle() {
    let mut sim = cluster(10);
    // Ninety more Node objects whose speakers never run.
    let seeds: Vec<SocketAddr> = (0..100).map(addr).collect();
    for i in 0..10 {
        sim.seed(i, seeds.clone());
    }
    sim.run_for(Duration::from_secs(1));
    let lost = sim.lost;
    sim.run_for(Duration::from_secs(10));
    let per_member_per_sec = (sim.lost - lost) as f64 / 10.0 / 10.0;
    println!("announces to absent seeds: {per_member_per_sec:.2} per member per second");
    assert!(per_member_per_sec <= 3.0, "{per_member_per_sec}");
    assert!(sim.converged());
}

#[test]
fn the_simulated_clock_is_the_only_clock() {
    // The same inputs give the same outputs: nothing reads a clock or a global RNG.
    let run = || {
        let mut sim = cluster(8);
        measure(&mut sim, 2, |s| s.kill(2)).0
    };
    assert_eq!(run(), run());
    let _ = sim::LATENCY;
}

/// Real datagrams of every kind: a death, the suspicion, the rejoin, announces and feeds.
pub(super) fn capture_traffic(sim: &mut Sim) -> Vec<Vec<u8>> {
    sim.capture = Some(Vec::new());
    sim.pause(4);
    sim.run_until(Duration::from_secs(5), |s| s.all_see_dead(4))
        .expect("dies");
    sim.resume(4);
    sim.run_until(Duration::from_secs(5), Sim::converged)
        .expect("rejoins");
    let mut wire = sim.capture.take().unwrap_or_default();
    wire.sort();
    wire.dedup();
    assert!(wire.len() > 20, "{}", wire.len());
    wire
}

#[test]
fn a_planned_restart_is_known_everywhere_before_the_leave_and_ends_with_the_new_incarnation() {
    let mut sim = cluster(30);
    let k = 7;
    let boot = sim.nodes[k].m.identity().boot;
    sim.input(k, Input::AnnounceRestart { until_ms: 99_000 });
    // What the driver does: let the notice spread for a few gossip periods, then leave.
    sim.run_for(Duration::from_millis(100));
    let knows = |s: &Sim, i: usize| s.nodes[i].m.restarting().get(&name(k)) == Some(&99_000);
    let before: Vec<usize> = sim
        .running()
        .into_iter()
        .filter(|i| !knows(&sim, *i))
        .collect();
    assert!(
        before.is_empty(),
        "members without the notice before the leave: {before:?}"
    );
    sim.input(k, Input::Leave);
    sim.kill(k);
    sim.run_until(Duration::from_secs(5), |s| s.all_see_dead(k))
        .expect("every member sees the leave");
    for i in sim.running() {
        assert!(knows(&sim, i), "member {i} forgot the notice");
    }
    // The replacement comes back under the next boot number and ends the restart for all.
    let auth = Auth::secret(b"sixteen-byte-secret-for-the-sim!").unwrap();
    sim.restart(k, auth, Timing::default(), boot + 1);
    sim.seed_all();
    sim.run_until(Duration::from_secs(5), Sim::converged)
        .expect("rejoins");
    sim.run_for(Duration::from_millis(200));
    for i in 0..30 {
        assert!(
            sim.nodes[i].m.restarting().is_empty(),
            "member {i}: {:?}",
            sim.nodes[i].m.restarting()
        );
    }
}
