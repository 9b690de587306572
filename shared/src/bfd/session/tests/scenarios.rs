//! Two sessions wired back to back in virtual time.

use std::num::NonZeroU8;
use std::time::Duration;

use super::sim::{A, B, Sim, discriminator};
use crate::bfd::packet::{Diag, State};
use crate::bfd::session::{Input, SessionConfig};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn config(tx_ms: u64, rx_ms: u64, mult: u8) -> SessionConfig {
    SessionConfig {
        desired_min_tx: ms(tx_ms),
        required_min_rx: ms(rx_ms),
        detect_mult: NonZeroU8::new(mult).unwrap(),
        passive: false,
    }
}

fn passive() -> SessionConfig {
    SessionConfig {
        passive: true,
        ..SessionConfig::default()
    }
}

/// Both default sessions started, Up, and settled (polls done) for a few seconds.
fn steady() -> Sim {
    let mut sim = Sim::new(SessionConfig::default(), SessionConfig::default());
    sim.input(A, Input::Start);
    sim.input(B, Input::Start);
    sim.run_until_both_up(ms(10));
    sim.run_for(ms(5000));
    sim
}

#[test]
fn comes_up_through_init() {
    let mut sim = Sim::new(SessionConfig::default(), SessionConfig::default());
    sim.input(A, Input::Start);
    sim.run_for(ms(500));
    // B was not started: A's first Down was ignored, and A stays at the slow rate.
    assert_eq!(sim.session(B).counters().ignored_before_start, 1);
    let first = sim.sent(A);
    assert_eq!(first.len(), 1, "one packet in 500 ms at the slow rate");
    let down = first[0].1;
    assert_eq!((down.state, down.your_discriminator), (State::Down, None));
    assert_eq!(down.desired_min_tx_us, 1_000_000, "slow start");
    assert_eq!(down.required_min_rx_us, 300_000);
    assert_eq!(down.required_min_echo_rx_us, 0, "no echo");

    // B starts: its Down puts A in Init, A's Init brings B Up, B's Up brings A Up — one
    // packet each way per step, sent as soon as the state changes.
    sim.input(B, Input::Start);
    sim.run_for(ms(100));
    assert_eq!(
        sim.transitions(A),
        [
            (ms(501), State::Down, State::Init, Diag::NoDiagnostic),
            (ms(503), State::Init, State::Up, Diag::NoDiagnostic),
        ]
    );
    assert_eq!(
        sim.transitions(B),
        [(ms(502), State::Down, State::Up, Diag::NoDiagnostic)]
    );
    assert_eq!(
        sim.session(A).remote_discriminator(),
        Some(discriminator(B, 0))
    );
    assert_eq!(
        sim.session(B).remote_discriminator(),
        Some(discriminator(A, 0))
    );
}

#[test]
fn simultaneous_start_goes_through_init_on_both_sides() {
    let mut sim = Sim::new(SessionConfig::default(), SessionConfig::default());
    sim.input(A, Input::Start);
    sim.input(B, Input::Start);
    sim.run_for(ms(100));
    for side in [A, B] {
        assert_eq!(
            sim.transitions(side),
            [
                (ms(1), State::Down, State::Init, Diag::NoDiagnostic),
                (ms(2), State::Init, State::Up, Diag::NoDiagnostic),
            ]
        );
    }
}

#[test]
fn poll_sequence_agrees_on_the_configured_intervals() {
    let mut sim = Sim::new(SessionConfig::default(), SessionConfig::default());
    sim.input(A, Input::Start);
    sim.input(B, Input::Start);
    sim.run_until_both_up(ms(10));
    let up_at = sim.now;
    sim.run_for(ms(3000));
    for side in [A, B] {
        let session = sim.session(side);
        assert!(!session.poll_in_progress());
        assert_eq!(session.counters().polls_completed, 1);
        assert_eq!(session.transmit_interval(), ms(300));
        assert_eq!(session.detection_time(), Some(ms(900)));
        // The first Up packet polls for the faster rate, and the peer answers it.
        let sent = sim.sent(side);
        let first_up = sent.iter().find(|(_, p)| p.state == State::Up).unwrap().1;
        assert!(first_up.poll && !first_up.final_);
        assert_eq!(first_up.desired_min_tx_us, 300_000);
        assert!(sent.iter().any(|(_, p)| p.final_ && !p.poll));
        assert!(sent.iter().all(|(_, p)| !(p.poll && p.final_)));
        // Steady state: 75–100 % of 300 ms, no Poll.
        let gaps = sim.periodic_gaps(side, up_at + ms(1000));
        assert!(gaps.len() > 5);
        assert!(
            gaps.iter().all(|g| (ms(225)..=ms(300)).contains(g)),
            "{gaps:?}"
        );
        assert!(
            sent.iter()
                .filter(|(at, _)| *at > up_at + ms(1000))
                .all(|(_, p)| !p.poll)
        );
    }
}

#[test]
fn default_profile_detects_a_dead_peer_in_900_ms() {
    let mut sim = steady();
    let killed = sim.now;
    sim.kill(B);
    sim.run_for(ms(2000));
    let last_heard = sim.last_delivery_to(A).unwrap();
    let [(down_at, from, to, diag)] = sim.transitions(A)[2..] else {
        panic!("{:?}", sim.transitions(A));
    };
    assert_eq!(
        (from, to, diag),
        (State::Up, State::Down, Diag::ControlDetectionTimeExpired)
    );
    let down_at = sim.t0 + down_at;
    // Exactly Detect Mult × 300 ms after the last packet: not a tick before.
    assert_eq!(down_at - last_heard, ms(900));
    // From the moment the peer died: at most 900 ms, at least 900 ms less one interval.
    let after_kill = down_at - killed;
    assert!((ms(600)..=ms(900)).contains(&after_kill), "{after_kill:?}");
    // The peer is forgotten, and A is back to slow Down packets without its discriminator.
    assert_eq!(sim.session(A).remote_discriminator(), None);
    let after: Vec<_> = sim
        .sent(A)
        .into_iter()
        .filter(|(at, _)| *at >= down_at)
        .collect();
    assert!(after.iter().all(|(_, p)| p.state == State::Down
        && p.your_discriminator.is_none()
        && p.diag == Diag::ControlDetectionTimeExpired
        && p.desired_min_tx_us == 1_000_000));
    assert!(sim.periodic_gaps(A, down_at).iter().all(|g| *g >= ms(750)));
}

#[test]
fn restarted_peer_comes_back_up() {
    let mut sim = steady();
    sim.kill(B);
    sim.run_for(ms(3000));
    assert_eq!(sim.state(A), State::Down);
    sim.restart(B, 1);
    let took = sim.run_until_both_up(ms(100));
    assert!(took <= ms(5), "{took:?}");
    assert_eq!(
        sim.session(A).remote_discriminator(),
        Some(discriminator(B, 1))
    );
    sim.run_for(ms(2000));
    assert_eq!(sim.session(A).detection_time(), Some(ms(900)));
    assert_eq!(sim.state(A), State::Up);
    assert_eq!(sim.state(B), State::Up);
}

#[test]
fn restart_before_detection_is_noticed_too() {
    // B restarts faster than A's Detection Time: its Down (Your Discriminator zero) tells A.
    let mut sim = steady();
    sim.kill(B);
    sim.run_for(ms(100));
    sim.restart(B, 1);
    sim.run_for(ms(50));
    assert_eq!(
        sim.transitions(A)[2..]
            .iter()
            .map(|t| (t.1, t.2, t.3))
            .collect::<Vec<_>>(),
        [
            (State::Up, State::Down, Diag::NeighborSignaledSessionDown),
            // A's Down takes B to Init, and B's Init brings A straight Up.
            (State::Down, State::Up, Diag::NoDiagnostic),
        ]
    );
    assert_eq!(
        sim.session(A).remote_discriminator(),
        Some(discriminator(B, 1))
    );
}

#[test]
fn peer_signaling_down_gives_diag_3() {
    let mut sim = steady();
    // A's packets stop reaching B: B times out (diag 1) and says so; A hears it (diag 3).
    sim.sides[A].mute = true;
    sim.run_for(ms(1200));
    let b = sim.transitions(B);
    let (b_down, _, _, b_diag) = b[2];
    assert_eq!(b_diag, Diag::ControlDetectionTimeExpired);
    assert_eq!(
        sim.transitions(A)[2],
        (
            b_down + ms(1),
            State::Up,
            State::Down,
            Diag::NeighborSignaledSessionDown
        )
    );
    // The path heals: back Up within a couple of slow intervals.
    sim.sides[A].mute = false;
    sim.run_until_both_up(ms(2100));
}

#[test]
fn admin_down_and_up() {
    let mut sim = steady();
    sim.input(A, Input::AdminDown);
    let at = sim.elapsed();
    sim.run_for(ms(5000));
    assert_eq!(
        sim.transitions(A)[2..],
        [(at, State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    // B hears it at once and stays Down (AdminDown never brings it to Init).
    assert_eq!(
        sim.transitions(B)[2..],
        [(
            at + ms(1),
            State::Up,
            State::Down,
            Diag::NeighborSignaledSessionDown
        )]
    );
    // A keeps telling B, at the slow rate.
    let since = sim.t0 + at;
    let admin: Vec<_> = sim
        .sent(A)
        .into_iter()
        .filter(|(t, _)| *t >= since)
        .collect();
    assert!(admin.len() >= 5);
    assert!(admin.iter().all(|(_, p)| p.state == State::AdminDown
        && p.diag == Diag::AdministrativelyDown
        && p.desired_min_tx_us == 1_000_000));
    assert!(sim.periodic_gaps(A, since).iter().all(|g| *g >= ms(750)));

    sim.input(A, Input::AdminUp);
    let took = sim.run_until_both_up(ms(100));
    assert!(took <= ms(5), "{took:?}");
    let (_, from, to, diag) = sim.transitions(A)[3];
    assert_eq!(
        (from, to, diag),
        (State::AdminDown, State::Down, Diag::NoDiagnostic)
    );
}

#[test]
fn passive_side_waits_for_the_peer() {
    let mut sim = Sim::new(SessionConfig::default(), passive());
    sim.input(B, Input::Start);
    sim.run_for(ms(5000));
    assert_eq!(sim.session(B).counters().sent, 0);
    assert!(sim.sent(B).is_empty());
    sim.input(A, Input::Start);
    let took = sim.run_until_both_up(ms(100));
    assert!(took <= ms(5), "{took:?}");

    // The active side dies: the passive side times out, forgets it and falls silent.
    sim.run_for(ms(3000));
    sim.kill(A);
    sim.run_for(ms(2000));
    assert_eq!(sim.state(B), State::Down);
    let down_at = sim.t0 + sim.transitions(B).last().unwrap().0;
    assert!(sim.sent(B).iter().all(|(at, _)| *at < down_at));
    sim.run_for(ms(10_000));
    assert!(sim.sent(B).iter().all(|(at, _)| *at < down_at));
}

#[test]
fn two_passive_sides_stay_silent() {
    let mut sim = Sim::new(passive(), passive());
    sim.input(A, Input::Start);
    sim.input(B, Input::Start);
    sim.run_for(ms(10_000));
    assert!(sim.log.is_empty(), "{:?}", sim.log);
}

#[test]
fn mismatched_intervals_negotiate_to_the_slower() {
    // A wants 100 ms both ways ×3; B sends every 300 ms, accepts every 500 ms, ×4.
    let mut sim = Sim::new(config(100, 100, 3), config(300, 500, 4));
    sim.input(A, Input::Start);
    sim.input(B, Input::Start);
    sim.run_until_both_up(ms(10));
    let up_at = sim.now;
    sim.run_for(ms(5000));
    let (a, b) = (sim.session(A), sim.session(B));
    assert_eq!(a.transmit_interval(), ms(500), "B accepts no faster");
    assert_eq!(b.transmit_interval(), ms(300), "B sends no faster");
    // A: B's ×4 × max(A's RX 100, B's TX 300); B: A's ×3 × max(B's RX 500, A's TX 100).
    assert_eq!(a.detection_time(), Some(ms(1200)));
    assert_eq!(b.detection_time(), Some(ms(1500)));
    let gaps = sim.periodic_gaps(A, up_at + ms(1000));
    assert!(
        gaps.iter().all(|g| (ms(375)..=ms(500)).contains(g)),
        "{gaps:?}"
    );
    let gaps = sim.periodic_gaps(B, up_at + ms(1000));
    assert!(
        gaps.iter().all(|g| (ms(225)..=ms(300)).contains(g)),
        "{gaps:?}"
    );
    assert!(sim.transitions(A).len() == 2 && sim.transitions(B).len() == 2);
}

#[test]
fn detect_mult_one_jitters_to_75_90_percent_without_false_alarms() {
    let mut sim = Sim::new(config(300, 300, 1), config(300, 300, 1));
    sim.input(A, Input::Start);
    sim.input(B, Input::Start);
    sim.run_until_both_up(ms(10));
    let up_at = sim.now;
    sim.run_for(ms(60_000));
    for side in [A, B] {
        let gaps = sim.periodic_gaps(side, up_at + ms(1000));
        assert!(gaps.len() > 150);
        assert!(
            gaps.iter().all(|g| (ms(225)..=ms(270)).contains(g)),
            "{gaps:?}"
        );
        assert_eq!(sim.transitions(side).len(), 2, "no flap");
    }
}

#[test]
fn jitter_spreads_over_the_whole_window() {
    let mut sim = steady();
    let from = sim.now;
    sim.run_for(ms(60_000));
    let gaps = sim.periodic_gaps(A, from);
    let below_250 = gaps.iter().filter(|g| **g < ms(250)).count();
    let above_275 = gaps.iter().filter(|g| **g > ms(275)).count();
    assert!(below_250 > gaps.len() / 5 && above_275 > gaps.len() / 5);
}

#[test]
fn runs_are_deterministic_per_seed() {
    let run = |seeds| {
        let mut sim = Sim::with_seeds(SessionConfig::default(), SessionConfig::default(), seeds);
        sim.input(A, Input::Start);
        sim.input(B, Input::Start);
        sim.run_for(ms(5000));
        let t0 = sim.t0;
        sim.log
            .into_iter()
            .map(|(at, e)| (at - t0, e))
            .collect::<Vec<_>>()
    };
    assert_eq!(run([1, 2]), run([1, 2]));
    assert_ne!(run([1, 2]), run([3, 4]));
}

#[test]
fn slower_transmit_is_polled_for_and_applied_on_final() {
    let mut sim = steady();
    let polls_before = sim.session(A).counters().polls_completed;
    let slower = config(600, 300, 3);
    sim.input(A, Input::Reconfigure(slower));
    let changed = sim.now;
    sim.run_for(ms(3000));
    let a = sim.session(A);
    assert_eq!(a.counters().polls_completed, polls_before + 1);
    assert_eq!(a.transmit_interval(), ms(600));
    assert_eq!(sim.session(B).detection_time(), Some(ms(1800)));
    // The Poll rode on the next periodic packet (no extra packet), which still left at the
    // old rate; B's Final came a millisecond later.
    let sent = sim.sent(A);
    let (poll_at, poll) = *sent.iter().find(|(at, _)| *at >= changed).unwrap();
    assert!(poll.poll && poll.desired_min_tx_us == 600_000);
    assert!(poll_at - changed <= ms(300));
    let gaps = sim.periodic_gaps(A, poll_at);
    assert!(
        gaps.iter().all(|g| (ms(450)..=ms(600)).contains(g)),
        "{gaps:?}"
    );
    assert_eq!(sim.transitions(B).len(), 2, "B never timed A out");
}
