//! Two sessions back to back over a virtual link: a deterministic discrete-event simulation.
//!
//! Every packet goes through the codec (encoded by the sender, parsed by the receiver) and
//! takes `delay` to cross. Timers fire exactly at their deadlines. Ties are broken by the
//! order events were created, so a run is a pure function of its inputs and seeds.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::super::{Action, Input, Session, SessionConfig, TimerKind};
use crate::bfd::packet::{ControlPacket, Diag, State};

pub const A: usize = 0;
pub const B: usize = 1;

/// Something that happened, for assertions.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Sent {
        side: usize,
        packet: ControlPacket,
    },
    Delivered {
        to: usize,
        packet: ControlPacket,
    },
    State {
        side: usize,
        from: State,
        to: State,
        diag: Diag,
    },
}

pub struct Side {
    pub session: Session,
    config: SessionConfig,
    /// (deadline, creation order) per timer kind.
    timers: [Option<(Instant, u64)>; 2],
    /// A stopped process: no input, no output.
    alive: bool,
    /// Packets this side sends are lost on the way.
    pub mute: bool,
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub sides: [Side; 2],
    /// (arrival, creation order, receiver, bytes)
    in_flight: Vec<(Instant, u64, usize, [u8; 24])>,
    pub delay: Duration,
    seq: u64,
    pub log: Vec<(Instant, Event)>,
}

pub fn discriminator(side: usize, generation: u32) -> NonZeroU32 {
    let base = if side == A { 0xa000_0000 } else { 0xb000_0000 };
    NonZeroU32::new(base + generation + 1).unwrap()
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::Transmit => 0,
        TimerKind::Detection => 1,
    }
}

const KINDS: [TimerKind; 2] = [TimerKind::Transmit, TimerKind::Detection];

impl Sim {
    pub fn new(a: SessionConfig, b: SessionConfig) -> Sim {
        Sim::with_seeds(a, b, [1, 2])
    }

    pub fn with_seeds(a: SessionConfig, b: SessionConfig, seeds: [u64; 2]) -> Sim {
        let t0 = Instant::now();
        let side = |index: usize, config: SessionConfig| Side {
            session: Session::new(discriminator(index, 0), config, seeds[index]),
            config,
            timers: [None, None],
            alive: true,
            mute: false,
        };
        Sim {
            t0,
            now: t0,
            sides: [side(A, a), side(B, b)],
            in_flight: Vec::new(),
            delay: Duration::from_millis(1),
            seq: 0,
            log: Vec::new(),
        }
    }

    pub fn session(&self, side: usize) -> &Session {
        &self.sides[side].session
    }

    /// Time since the start of the simulation.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn input(&mut self, side: usize, input: Input) {
        let actions = self.sides[side].session.handle(self.now, input);
        self.apply(side, actions);
    }

    fn apply(&mut self, side: usize, actions: Vec<Action>) {
        for action in actions {
            self.seq += 1;
            match action {
                Action::Send(packet) => {
                    self.log.push((self.now, Event::Sent { side, packet }));
                    if !self.sides[side].mute {
                        self.in_flight.push((
                            self.now + self.delay,
                            self.seq,
                            1 - side,
                            packet.to_bytes(),
                        ));
                    }
                }
                Action::Schedule { timer, at } => {
                    assert!(at >= self.now, "{timer:?} scheduled in the past");
                    self.sides[side].timers[timer_index(timer)] = Some((at, self.seq));
                }
                Action::Cancel(timer) => self.sides[side].timers[timer_index(timer)] = None,
                Action::StateChanged { from, to, diag } => self.log.push((
                    self.now,
                    Event::State {
                        side,
                        from,
                        to,
                        diag,
                    },
                )),
            }
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Processes every event up to `until`, in time order.
    pub fn run_until(&mut self, until: Instant) {
        for _ in 0..10_000_000 {
            let mut next: Option<(Instant, u64, Step)> = None;
            let mut consider = |at: Instant, seq: u64, step: Step| {
                if at <= until && next.is_none_or(|(t, s, _)| (at, seq) < (t, s)) {
                    next = Some((at, seq, step));
                }
            };
            for (side, s) in self.sides.iter().enumerate() {
                for kind in KINDS {
                    if let Some((at, seq)) = s.timers[timer_index(kind)] {
                        consider(at, seq, Step::Timer(side, kind));
                    }
                }
            }
            for (index, &(at, seq, _, _)) in self.in_flight.iter().enumerate() {
                consider(at, seq, Step::Packet(index));
            }
            let Some((at, _, step)) = next else {
                self.now = until;
                return;
            };
            self.now = at;
            match step {
                Step::Timer(side, kind) => {
                    self.sides[side].timers[timer_index(kind)] = None;
                    self.input(side, Input::Timer(kind));
                }
                Step::Packet(index) => {
                    let (_, _, to, bytes) = self.in_flight.swap_remove(index);
                    let packet = ControlPacket::parse(&bytes).expect("sent packets parse");
                    if self.sides[to].alive {
                        self.log.push((self.now, Event::Delivered { to, packet }));
                        self.input(to, Input::Packet(packet));
                    }
                }
            }
        }
        panic!("simulation did not settle");
    }

    /// The process on `side` stops: it sends nothing more and its timers are gone.
    pub fn kill(&mut self, side: usize) {
        self.sides[side].alive = false;
        self.sides[side].timers = [None, None];
    }

    /// A fresh process on `side` (new discriminator), started now.
    pub fn restart(&mut self, side: usize, generation: u32) {
        let s = &mut self.sides[side];
        s.session = Session::new(
            discriminator(side, generation),
            s.config,
            100 + u64::from(generation),
        );
        s.timers = [None, None];
        s.alive = true;
        self.input(side, Input::Start);
    }

    pub fn state(&self, side: usize) -> State {
        self.sides[side].session.state()
    }

    /// Runs until both sides are Up (or panics after `limit`); returns how long it took.
    pub fn run_until_both_up(&mut self, limit: Duration) -> Duration {
        let start = self.now;
        while self.state(A) != State::Up || self.state(B) != State::Up {
            assert!(self.now - start < limit, "not Up within {limit:?}");
            self.run_for(Duration::from_micros(100));
        }
        self.now - start
    }

    /// (time since t0, from, to, diag) of every state change of `side`.
    pub fn transitions(&self, side: usize) -> Vec<(Duration, State, State, Diag)> {
        self.log
            .iter()
            .filter_map(|(at, e)| match *e {
                Event::State {
                    side: s,
                    from,
                    to,
                    diag,
                } if s == side => Some((*at - self.t0, from, to, diag)),
                _ => None,
            })
            .collect()
    }

    /// Packets `side` sent (whether or not they arrived), with their times.
    pub fn sent(&self, side: usize) -> Vec<(Instant, ControlPacket)> {
        self.log
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Sent { side: s, packet } if *s == side => Some((*at, *packet)),
                _ => None,
            })
            .collect()
    }

    /// Gaps between the periodic (non-Final) packets `side` sent after `from`.
    pub fn periodic_gaps(&self, side: usize, from: Instant) -> Vec<Duration> {
        let times: Vec<Instant> = self
            .sent(side)
            .into_iter()
            .filter(|(at, p)| *at >= from && !p.final_)
            .map(|(at, _)| at)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// When a packet last reached `side`.
    pub fn last_delivery_to(&self, side: usize) -> Option<Instant> {
        self.log.iter().rev().find_map(|(at, e)| match e {
            Event::Delivered { to, .. } if *to == side => Some(*at),
            _ => None,
        })
    }
}

#[derive(Clone, Copy)]
enum Step {
    Timer(usize, TimerKind),
    Packet(usize),
}
