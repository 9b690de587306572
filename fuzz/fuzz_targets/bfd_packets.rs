//! Any bytes given to the BFD Control packet parser, as a UDP socket would: never a panic.
//! Whatever parses must re-encode to the same packet (and to the input's mandatory section,
//! Length aside) and is fed to a running session. The same bytes are also read as a script
//! (a config byte, then records of an op byte and 24 packet bytes) that drives one session
//! through packets, timers, admin changes and new timers in virtual time; everything the
//! session sends must parse back to itself, and its state must stay coherent.
#![no_main]

use std::num::{NonZeroU8, NonZeroU32};
use std::time::{Duration, Instant};

use ferrolb_shared::bfd::packet::{ControlPacket, MANDATORY_LEN, State};
use ferrolb_shared::bfd::session::{Action, Input, Session, SessionConfig, TimerKind};
use libfuzzer_sys::fuzz_target;

const LOCAL: NonZeroU32 = NonZeroU32::new(0xd1db_fb15).unwrap();

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = ControlPacket::parse(data) {
        let encoded = packet.to_bytes();
        assert_eq!(ControlPacket::parse(&encoded), Ok(packet));
        let mut expected = [0u8; MANDATORY_LEN];
        expected.copy_from_slice(&data[..MANDATORY_LEN]);
        expected[3] = MANDATORY_LEN as u8;
        assert_eq!(encoded, expected);
        let mut driver = Driver::new(SessionConfig::default());
        driver.step(Input::Start);
        driver.step(Input::Packet(packet));
    }
    script(data);
});

/// A minimal driver: one deadline per timer, checks on every action.
struct Driver {
    session: Session,
    now: Instant,
    timers: [Option<Instant>; 2],
    state: State,
}

impl Driver {
    fn new(config: SessionConfig) -> Driver {
        let session = Session::new(LOCAL, config, 7);
        let state = session.state();
        Driver {
            session,
            now: Instant::now(),
            timers: [None, None],
            state,
        }
    }

    fn step(&mut self, input: Input) {
        for action in self.session.handle(self.now, input) {
            match action {
                Action::Send(p) => {
                    assert_eq!(ControlPacket::parse(&p.to_bytes()), Ok(p));
                    assert!(!(p.poll && p.final_));
                    assert_eq!(p.my_discriminator, LOCAL);
                }
                Action::Schedule { timer, at } => {
                    assert!(at >= self.now);
                    self.timers[index(timer)] = Some(at);
                }
                Action::Cancel(timer) => self.timers[index(timer)] = None,
                Action::StateChanged { from, to, .. } => {
                    assert_eq!(from, self.state);
                    assert_ne!(from, to);
                    self.state = to;
                }
            }
        }
        assert_eq!(self.state, self.session.state());
        if matches!(self.state, State::Init | State::Up) {
            assert!(self.session.remote_discriminator().is_some());
        }
    }

    fn fire(&mut self, timer: TimerKind) {
        if let Some(at) = self.timers[index(timer)].take() {
            self.now = self.now.max(at);
        }
        self.step(Input::Timer(timer));
    }
}

fn index(timer: TimerKind) -> usize {
    match timer {
        TimerKind::Transmit => 0,
        TimerKind::Detection => 1,
    }
}

fn script(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let config = SessionConfig {
        desired_min_tx: Duration::from_millis(100 * u64::from(setup >> 5)),
        required_min_rx: Duration::from_millis(100 * u64::from((setup >> 2) & 0b111)),
        detect_mult: NonZeroU8::new((setup & 0b1) + 1).unwrap_or(NonZeroU8::MIN),
        passive: setup & 0b10 != 0,
    };
    let mut driver = Driver::new(config);
    driver.step(Input::Start);
    while let Some((&op, tail)) = rest.split_first() {
        let (record, tail) = tail.split_at(tail.len().min(MANDATORY_LEN));
        rest = tail;
        driver.now += Duration::from_millis(50 * u64::from(op >> 4));
        match op & 0b111 {
            0..=3 => {
                let mut bytes = record.to_vec();
                // Most random discriminators are not ours: make some of them ours.
                if op & 0b1000 != 0
                    && let Some(your) = bytes.get_mut(8..12)
                {
                    your.copy_from_slice(&LOCAL.get().to_be_bytes());
                }
                if let Ok(packet) = ControlPacket::parse(&bytes) {
                    assert_eq!(ControlPacket::parse(&packet.to_bytes()), Ok(packet));
                    driver.step(Input::Packet(packet));
                }
            }
            4 => driver.fire(TimerKind::Transmit),
            5 => driver.fire(TimerKind::Detection),
            6 if op & 0b1000 != 0 => driver.step(Input::AdminDown),
            6 => driver.step(Input::AdminUp),
            _ => {
                let byte = |i: usize| u64::from(record.get(i).copied().unwrap_or(0));
                driver.step(Input::Reconfigure(SessionConfig {
                    desired_min_tx: Duration::from_micros(byte(0) << 12),
                    required_min_rx: Duration::from_micros(byte(1) << 12),
                    detect_mult: NonZeroU8::new(record.get(2).copied().unwrap_or(3))
                        .unwrap_or(NonZeroU8::MIN),
                    passive: byte(3) & 1 != 0,
                }));
            }
        }
    }
}
