//! Arbitrary input sequences against one session.

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Packet {
        state: u8,
        /// 0: zero, 1: ours, 2: someone else's
        your: u8,
        flags: [bool; 3],
        detect_mult: u8,
        tx_ms: u16,
        rx_ms: u16,
    },
    FireTimer(bool),
    Advance(u16),
    AdminDown,
    AdminUp,
    Reconfigure(u16, u16, u8, bool),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8, 0..3u8, any::<[bool; 3]>(), 1..=5u8, 0..1500u16, 0..1500u16).prop_map(
            |(state, your, flags, detect_mult, tx_ms, rx_ms)| Op::Packet {
                state, your, flags, detect_mult, tx_ms, rx_ms
            }
        ),
        4 => any::<bool>().prop_map(Op::FireTimer),
        2 => (0..3000u16).prop_map(Op::Advance),
        1 => Just(Op::AdminDown),
        1 => Just(Op::AdminUp),
        1 => (1..1000u16, 1..1000u16, 1..=4u8, any::<bool>())
            .prop_map(|(tx, rx, m, p)| Op::Reconfigure(tx, rx, m, p)),
    ]
}

proptest! {
    /// Whatever arrives in whatever order: no panic, every packet we send parses back to
    /// itself and never carries Poll and Final together, timers are never in the past, and
    /// Init/Up always know the peer.
    #[test]
    fn any_input_sequence_keeps_the_invariants(
        passive in any::<bool>(),
        ops in proptest::collection::vec(arb_op(), 1..80),
    ) {
        let mut now = Instant::now();
        let config = SessionConfig { passive, ..SessionConfig::default() };
        let mut s = Session::new(LOCAL, config, 3);
        let mut timers: [Option<Instant>; 2] = [None, None];
        let mut state = s.state();
        let mut check = |s: &Session, now: Instant, actions: Vec<Action>, timers: &mut [Option<Instant>; 2]| {
            for action in actions {
                match action {
                    Action::Send(p) => {
                        prop_assert_eq!(ControlPacket::parse(&p.to_bytes()), Ok(p));
                        prop_assert!(!(p.poll && p.final_));
                        prop_assert_eq!(p.my_discriminator, LOCAL);
                    }
                    Action::Schedule { timer, at } => {
                        prop_assert!(at >= now);
                        timers[usize::from(timer == TimerKind::Detection)] = Some(at);
                    }
                    Action::Cancel(timer) => {
                        timers[usize::from(timer == TimerKind::Detection)] = None;
                    }
                    Action::StateChanged { from, to, .. } => {
                        prop_assert_eq!(from, state);
                        prop_assert_ne!(from, to);
                        state = to;
                    }
                }
            }
            prop_assert_eq!(state, s.state());
            if matches!(s.state(), State::Init | State::Up) {
                prop_assert!(s.remote_discriminator().is_some());
            }
            Ok(())
        };
        let actions = s.handle(now, Input::Start);
        check(&s, now, actions, &mut timers)?;
        for op in ops {
            let input = match op {
                Op::Packet { state, your, flags, detect_mult, tx_ms, rx_ms } => {
                    let state = State::from_code(state);
                    let your = match your {
                        0 => None,
                        1 => Some(LOCAL),
                        _ => Some(PEER),
                    };
                    let packet = ControlPacket {
                        state,
                        your_discriminator: your,
                        poll: flags[0] && !flags[1],
                        final_: flags[1],
                        demand: flags[2],
                        detect_mult: mult(detect_mult),
                        desired_min_tx_us: u32::from(tx_ms) * 1000,
                        required_min_rx_us: u32::from(rx_ms) * 1000,
                        ..peer(state, your)
                    };
                    // Only what the codec lets through reaches a session.
                    match ControlPacket::parse(&packet.to_bytes()) {
                        Ok(p) => Input::Packet(p),
                        Err(_) => continue,
                    }
                }
                Op::FireTimer(detection) => {
                    let kind = if detection { TimerKind::Detection } else { TimerKind::Transmit };
                    if let Some(at) = timers[usize::from(detection)].take() {
                        now = now.max(at);
                    }
                    Input::Timer(kind)
                }
                Op::Advance(v) => {
                    now += ms(v.into());
                    continue;
                }
                Op::AdminDown => Input::AdminDown,
                Op::AdminUp => Input::AdminUp,
                Op::Reconfigure(tx, rx, m, p) => Input::Reconfigure(SessionConfig {
                    desired_min_tx: ms(tx.into()),
                    required_min_rx: ms(rx.into()),
                    detect_mult: mult(m),
                    passive: p,
                }),
            };
            let actions = s.handle(now, input);
            check(&s, now, actions, &mut timers)?;
        }
    }
}
