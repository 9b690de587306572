//! One session fed by hand (RFC 5880 clauses one by one, a replayed FRR conversation), the
//! `BFDProfile` mapping ([`profile`]), arbitrary input sequences ([`props`]), and two
//! sessions back to back in virtual time ([`scenarios`], on the [`sim`] harness).

mod profile;
mod props;
mod scenarios;
mod sim;

use super::*;
use crate::bfd::packet::ControlPacket;

/// BIRD's and FRR's discriminators in the captured conversation (see packet/tests.rs).
const LOCAL: NonZeroU32 = NonZeroU32::new(0xd1db_fb15).unwrap();
const PEER: NonZeroU32 = NonZeroU32::new(0x7e1f_b3fe).unwrap();

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn mult(v: u8) -> NonZeroU8 {
    NonZeroU8::new(v).unwrap()
}

/// A packet from the peer: 300 ms both ways, ×3, no flags.
fn peer(state: State, your: Option<NonZeroU32>) -> ControlPacket {
    ControlPacket {
        diag: Diag::NoDiagnostic,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: mult(3),
        my_discriminator: PEER,
        your_discriminator: your,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
    }
}

fn sends(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn state_changes(actions: &[Action]) -> Vec<(State, State, Diag)> {
    actions
        .iter()
        .filter_map(|a| match *a {
            Action::StateChanged { from, to, diag } => Some((from, to, diag)),
            _ => None,
        })
        .collect()
}

/// A started session brought Up by the peer's Init, its Poll answered. Returns it and the
/// current time.
fn up_with(config: SessionConfig, from_peer: ControlPacket) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(LOCAL, config, 7);
    s.handle(t0, Input::Start);
    let actions = s.handle(
        t0 + ms(1),
        Input::Packet(ControlPacket {
            state: State::Init,
            your_discriminator: Some(LOCAL),
            ..from_peer
        }),
    );
    assert_eq!(
        state_changes(&actions),
        [(State::Down, State::Up, Diag::NoDiagnostic)]
    );
    s.handle(
        t0 + ms(2),
        Input::Packet(ControlPacket {
            state: State::Up,
            your_discriminator: Some(LOCAL),
            final_: true,
            ..from_peer
        }),
    );
    assert!(!s.poll_in_progress());
    (s, t0 + ms(2))
}

fn up() -> (Session, Instant) {
    up_with(SessionConfig::default(), peer(State::Up, Some(LOCAL)))
}

#[test]
fn silent_until_start_then_slow_down_packets() {
    let t0 = Instant::now();
    let mut s = Session::new(LOCAL, SessionConfig::default(), 7);
    assert_eq!(s.state(), State::Down);
    assert!(
        s.handle(t0, Input::Packet(peer(State::Down, None)))
            .is_empty()
    );
    assert!(s.handle(t0, Input::Timer(TimerKind::Transmit)).is_empty());
    assert_eq!(s.counters().ignored_before_start, 2);

    let actions = s.handle(t0, Input::Start);
    let [Action::Send(first), Action::Schedule { timer, at }] = actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (first.state, first.your_discriminator, first.poll),
        (State::Down, None, false)
    );
    assert_eq!(first.my_discriminator, LOCAL);
    assert_eq!(first.desired_min_tx_us, 1_000_000);
    assert_eq!(first.required_min_rx_us, 300_000);
    assert_eq!(timer, TimerKind::Transmit);
    assert!((ms(750)..=ms(1000)).contains(&(at - t0)));
    assert!(
        s.handle(t0, Input::Start).is_empty(),
        "Start twice is a no-op"
    );
}

#[test]
fn wrong_your_discriminator_is_dropped_and_counted() {
    let (mut s, now) = up();
    let deadline = s.deadline(TimerKind::Detection);
    let other = NonZeroU32::new(LOCAL.get() + 1);
    for state in [State::Down, State::AdminDown, State::Up] {
        let actions = s.handle(now + ms(10), Input::Packet(peer(state, other)));
        assert!(actions.is_empty(), "{actions:?}");
    }
    assert_eq!(s.counters().wrong_your_discriminator, 3);
    assert_eq!(s.state(), State::Up);
    assert_eq!(
        s.deadline(TimerKind::Detection),
        deadline,
        "not a sign of life"
    );
}

#[test]
fn peer_down_without_our_discriminator_means_it_restarted() {
    let (mut s, now) = up();
    let actions = s.handle(now, Input::Packet(peer(State::Down, None)));
    assert_eq!(
        state_changes(&actions),
        [(State::Up, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    // Its next Down is the first step of the next handshake.
    let next = s.handle(now + ms(1), Input::Packet(peer(State::Down, None)));
    assert_eq!(
        state_changes(&next),
        [(State::Down, State::Init, Diag::NoDiagnostic)]
    );
}

#[test]
fn poll_is_answered_at_once_with_final_in_every_state() {
    let polled = |state| ControlPacket {
        poll: true,
        ..peer(state, Some(LOCAL))
    };
    let (mut s, now) = up();
    let actions = s.handle(now + ms(5), Input::Packet(polled(State::Up)));
    let [reply] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert!(reply.final_ && !reply.poll);
    assert_eq!(reply.state, State::Up);
    assert_eq!(s.counters().finals_sent, 1);

    s.handle(now + ms(6), Input::AdminDown);
    let actions = s.handle(now + ms(7), Input::Packet(polled(State::Down)));
    let finals: Vec<_> = sends(&actions).into_iter().filter(|p| p.final_).collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].state, State::AdminDown);
    assert_eq!(finals[0].diag, Diag::AdministrativelyDown);
}

#[test]
fn early_and_stale_timers_are_harmless() {
    let (mut s, now) = up();
    let at = s.deadline(TimerKind::Transmit).unwrap();
    assert_eq!(
        s.handle(now, Input::Timer(TimerKind::Transmit)),
        [Action::Schedule {
            timer: TimerKind::Transmit,
            at
        }]
    );
    let detect = s.deadline(TimerKind::Detection).unwrap();
    assert_eq!(
        s.handle(now, Input::Timer(TimerKind::Detection)),
        [Action::Schedule {
            timer: TimerKind::Detection,
            at: detect
        }]
    );
    // A fresh session has no detection deadline: firing it does nothing.
    let mut fresh = Session::new(LOCAL, SessionConfig::default(), 1);
    fresh.handle(now, Input::Start);
    assert!(
        fresh
            .handle(now + ms(5000), Input::Timer(TimerKind::Detection))
            .is_empty()
    );
}

#[test]
fn detection_expiry_takes_the_session_down_with_diag_1() {
    let (mut s, now) = up();
    assert_eq!(s.detection_time(), Some(ms(900)));
    let at = s.deadline(TimerKind::Detection).unwrap();
    assert_eq!(at, now + ms(900));
    let actions = s.handle(at, Input::Timer(TimerKind::Detection));
    assert_eq!(
        state_changes(&actions),
        [(State::Up, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    let [down] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (down.state, down.diag, down.your_discriminator),
        (State::Down, Diag::ControlDetectionTimeExpired, None)
    );
    assert_eq!(s.remote_discriminator(), None);
    assert_eq!(s.detection_time(), None);
    assert_eq!(s.counters().detection_expired, 1);
}

#[test]
fn detection_expiry_while_down_only_forgets_the_peer() {
    let t0 = Instant::now();
    let mut s = Session::new(LOCAL, SessionConfig::default(), 7);
    s.handle(t0, Input::Start);
    // The peer is AdminDown: we learn it, and stay Down.
    let actions = s.handle(t0, Input::Packet(peer(State::AdminDown, None)));
    assert!(state_changes(&actions).is_empty());
    assert_eq!(s.remote_discriminator(), Some(PEER));
    let at = s.deadline(TimerKind::Detection).unwrap();
    let actions = s.handle(at, Input::Timer(TimerKind::Detection));
    assert!(state_changes(&actions).is_empty());
    assert_eq!(s.remote_discriminator(), None);
    assert_eq!(s.state(), State::Down);
}

#[test]
fn raised_transmit_interval_waits_for_the_final() {
    let (mut s, now) = up();
    s.handle(
        now,
        Input::Reconfigure(SessionConfig {
            desired_min_tx: ms(600),
            ..SessionConfig::default()
        }),
    );
    assert!(s.poll_in_progress());
    assert_eq!(s.transmit_interval(), ms(300), "held until the Final");
    let at = s.deadline(TimerKind::Transmit).unwrap();
    let actions = s.handle(at, Input::Timer(TimerKind::Transmit));
    let [poll] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert!(poll.poll && !poll.final_);
    assert_eq!(poll.desired_min_tx_us, 600_000);
    // An ordinary packet does not end the Poll; a Final does.
    s.handle(at + ms(1), Input::Packet(peer(State::Up, Some(LOCAL))));
    assert_eq!(s.transmit_interval(), ms(300));
    let final_ = ControlPacket {
        final_: true,
        ..peer(State::Up, Some(LOCAL))
    };
    let actions = s.handle(at + ms(2), Input::Packet(final_));
    assert_eq!(s.transmit_interval(), ms(600));
    assert!(!s.poll_in_progress());
    // The next packet moves out to 450–600 ms after the last one.
    let [Action::Schedule { at: next, .. }] = actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Schedule {
                    timer: TimerKind::Transmit,
                    ..
                }
            )
        })
        .cloned()
        .collect::<Vec<_>>()[..]
    else {
        panic!("{actions:?}");
    };
    assert!((ms(450)..=ms(600)).contains(&(next - at)));
}

#[test]
fn reduced_receive_interval_keeps_the_old_detection_time_until_the_final() {
    // The peer sends every 100 ms; we accepted 300 ms, so detection is 3 × 300 ms.
    let fast_peer = ControlPacket {
        desired_min_tx_us: 100_000,
        required_min_rx_us: 100_000,
        ..peer(State::Up, Some(LOCAL))
    };
    let (mut s, now) = up_with(SessionConfig::default(), fast_peer);
    assert_eq!(s.detection_time(), Some(ms(900)));
    s.handle(
        now,
        Input::Reconfigure(SessionConfig {
            required_min_rx: ms(100),
            ..SessionConfig::default()
        }),
    );
    assert_eq!(
        s.detection_time(),
        Some(ms(900)),
        "the peer may not know yet"
    );
    s.handle(now + ms(1), Input::Packet(fast_peer));
    assert_eq!(s.detection_time(), Some(ms(900)));
    s.handle(
        now + ms(2),
        Input::Packet(ControlPacket {
            final_: true,
            ..fast_peer
        }),
    );
    assert_eq!(s.detection_time(), Some(ms(300)));
    assert_eq!(s.deadline(TimerKind::Detection), Some(now + ms(302)));
}

#[test]
fn a_change_during_a_poll_is_polled_for_again() {
    let (mut s, now) = up();
    let slower = |tx| SessionConfig {
        desired_min_tx: ms(tx),
        ..SessionConfig::default()
    };
    s.handle(now, Input::Reconfigure(slower(600)));
    s.handle(now, Input::Reconfigure(slower(900)));
    let final_ = ControlPacket {
        final_: true,
        ..peer(State::Up, Some(LOCAL))
    };
    // This Final may answer a Poll that advertised 600 ms: not enough.
    s.handle(now + ms(1), Input::Packet(final_));
    assert!(s.poll_in_progress());
    assert_eq!(s.transmit_interval(), ms(300));
    // A non-Final packet, then a Poll, then its Final.
    s.handle(now + ms(2), Input::Packet(peer(State::Up, Some(LOCAL))));
    let at = s.deadline(TimerKind::Transmit).unwrap();
    let poll = sends(&s.handle(at, Input::Timer(TimerKind::Transmit)))[0];
    assert!(poll.poll);
    assert_eq!(poll.desired_min_tx_us, 900_000);
    s.handle(at + ms(1), Input::Packet(final_));
    assert!(!s.poll_in_progress());
    assert_eq!(s.transmit_interval(), ms(900));
}

#[test]
fn faster_peer_receive_interval_is_honored_at_once() {
    let slow_rx = ControlPacket {
        required_min_rx_us: 2_000_000,
        ..peer(State::Up, Some(LOCAL))
    };
    let (mut s, now) = up_with(SessionConfig::default(), slow_rx);
    assert_eq!(s.transmit_interval(), ms(2000));
    // 500 ms after our last packet the peer accepts 300 ms: a packet is already due.
    let actions = s.handle(now + ms(500), Input::Packet(peer(State::Up, Some(LOCAL))));
    assert_eq!(s.transmit_interval(), ms(300));
    assert_eq!(sends(&actions).len(), 1, "{actions:?}");
}

#[test]
fn peer_demand_mode_and_zero_receive_interval_stop_periodic_packets() {
    let (mut s, now) = up();
    let demand = ControlPacket {
        demand: true,
        ..peer(State::Up, Some(LOCAL))
    };
    let actions = s.handle(now, Input::Packet(demand));
    assert!(actions.contains(&Action::Cancel(TimerKind::Transmit)));
    assert_eq!(s.deadline(TimerKind::Transmit), None);
    // Its Polls are still answered, and our detection still runs.
    let actions = s.handle(
        now + ms(1),
        Input::Packet(ControlPacket {
            poll: true,
            ..demand
        }),
    );
    assert!(sends(&actions)[0].final_);
    assert!(s.deadline(TimerKind::Detection).is_some());
    // Demand off: periodic packets resume.
    let actions = s.handle(now + ms(2), Input::Packet(peer(State::Up, Some(LOCAL))));
    assert!(!sends(&actions).is_empty() || s.deadline(TimerKind::Transmit).is_some());

    let no_rx = ControlPacket {
        required_min_rx_us: 0,
        ..peer(State::Up, Some(LOCAL))
    };
    s.handle(now + ms(3), Input::Packet(no_rx));
    assert_eq!(s.deadline(TimerKind::Transmit), None);
}

#[test]
fn admin_down_ignores_the_peer_until_admin_up() {
    let (mut s, now) = up();
    let actions = s.handle(now, Input::AdminDown);
    assert_eq!(
        state_changes(&actions),
        [(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    let [told] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (told.state, told.diag),
        (State::AdminDown, Diag::AdministrativelyDown)
    );
    for state in [State::Down, State::Init, State::Up] {
        let actions = s.handle(now + ms(1), Input::Packet(peer(state, Some(LOCAL))));
        assert!(state_changes(&actions).is_empty());
    }
    assert_eq!(s.state(), State::AdminDown);
    assert!(s.handle(now, Input::AdminDown).is_empty());
    let actions = s.handle(now + ms(2), Input::AdminUp);
    assert_eq!(
        state_changes(&actions),
        [(State::AdminDown, State::Down, Diag::NoDiagnostic)]
    );
    assert!(s.handle(now + ms(2), Input::AdminUp).is_empty());
}

#[test]
fn admin_down_before_start_sends_nothing_until_start() {
    let t0 = Instant::now();
    let mut s = Session::new(LOCAL, SessionConfig::default(), 7);
    let actions = s.handle(t0, Input::AdminDown);
    assert_eq!(
        actions,
        [Action::StateChanged {
            from: State::Down,
            to: State::AdminDown,
            diag: Diag::AdministrativelyDown
        }]
    );
    let first = sends(&s.handle(t0, Input::Start))[0];
    assert_eq!(first.state, State::AdminDown);
}

#[test]
fn passive_session_answers_the_first_packet() {
    let t0 = Instant::now();
    let passive = SessionConfig {
        passive: true,
        ..SessionConfig::default()
    };
    let mut s = Session::new(LOCAL, passive, 7);
    assert!(s.handle(t0, Input::Start).is_empty());
    assert_eq!(s.deadline(TimerKind::Transmit), None);
    let actions = s.handle(t0 + ms(1), Input::Packet(peer(State::Down, None)));
    assert_eq!(
        state_changes(&actions),
        [(State::Down, State::Init, Diag::NoDiagnostic)]
    );
    let [init] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (init.state, init.your_discriminator),
        (State::Init, Some(PEER))
    );
    assert!(s.deadline(TimerKind::Transmit).is_some());
}

#[test]
fn reconfigure_to_passive_without_a_peer_stops_sending() {
    let t0 = Instant::now();
    let mut s = Session::new(LOCAL, SessionConfig::default(), 7);
    s.handle(t0, Input::Start);
    let actions = s.handle(
        t0,
        Input::Reconfigure(SessionConfig {
            passive: true,
            ..SessionConfig::default()
        }),
    );
    assert_eq!(actions, [Action::Cancel(TimerKind::Transmit)]);
}

/// The FRR side of the captured conversation (packet/tests.rs), replayed to a session that
/// holds BIRD's discriminator: what BIRD did, we do.
#[test]
fn replays_frr_bfdd() {
    let parse = |hex: &str| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        ControlPacket::parse(&bytes).unwrap()
    };
    let t0 = Instant::now();
    let mut s = Session::new(LOCAL, SessionConfig::default(), 7);
    s.handle(t0, Input::Start);
    // FRR: Init (1 s both ways while not Up, echo 50 ms).
    let actions = s.handle(
        t0 + ms(100),
        Input::Packet(parse("208003187e1fb3fed1dbfb15000f4240000f42400000c350")),
    );
    assert_eq!(
        state_changes(&actions),
        [(State::Down, State::Up, Diag::NoDiagnostic)]
    );
    // As BIRD did: Up, Poll, 300 ms, your = FRR's.
    let [up] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        up.to_bytes().to_vec(),
        parse("20e00318d1dbfb157e1fb3fe000493e0000493e000000000")
            .to_bytes()
            .to_vec()
    );
    // FRR: Up with its own Poll, then the Final to ours.
    let actions = s.handle(
        t0 + ms(101),
        Input::Packet(parse("20e003187e1fb3fed1dbfb15000493e0000493e00000c350")),
    );
    let [final_] = sends(&actions)[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        final_,
        parse("20d00318d1dbfb157e1fb3fe000493e0000493e000000000")
    );
    s.handle(
        t0 + ms(102),
        Input::Packet(parse("20d003187e1fb3fed1dbfb15000493e0000493e00000c350")),
    );
    assert!(!s.poll_in_progress());
    assert_eq!(s.detection_time(), Some(ms(900)));
    // FRR reconfigured to 200/250 ms ×5 and polls: we answer, and now detect in 5 × 300 ms.
    let actions = s.handle(
        t0 + ms(200),
        Input::Packet(parse("20e005187e1fb3fed1dbfb1500030d400003d0900000c350")),
    );
    assert!(sends(&actions)[0].final_);
    assert_eq!(s.detection_time(), Some(ms(1500)));
    assert_eq!(s.transmit_interval(), ms(300));
    // FRR shut down (AdminDown, diag 0): we go Down with diag 3 and poll for 1 s, as BIRD.
    let actions = s.handle(
        t0 + ms(300),
        Input::Packet(parse("200005187e1fb3fed1dbfb1500030d400003d0900000c350")),
    );
    assert_eq!(
        state_changes(&actions),
        [(State::Up, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    assert_eq!(
        sends(&actions)[0],
        parse("23600318d1dbfb157e1fb3fe000f4240000493e000000000")
    );
}
