//! An in-memory network with a virtual clock for driving many [`Membership`]s: a priority
//! queue of timers and in-flight datagrams, fixed latency, and faults (kill, pause, cut
//! links). No sockets; the addresses are documentation ones (TEST-NET) and never leave
//! this process.

use super::{Action, Auth, Input, Membership, NodeId, Timer, Timing};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// One-way latency of every datagram.
pub const LATENCY: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    Running,
    /// SIGSTOP: inputs wait in `backlog` until resumed.
    Paused,
    /// SIGKILL, or stopped after leaving: inputs are lost.
    Dead,
}

pub struct Node {
    pub m: Membership,
    pub run: Run,
    /// Bumped on restart, so timers of the previous process are dropped.
    generation: u32,
    backlog: Vec<Event>,
    /// The queue entry of the last ack deadline armed, for [`Action::CancelAckDeadline`].
    ack_deadline: Option<u64>,
    /// Timers that fired (were handed to the membership): a process's wake-ups, less
    /// datagrams.
    pub timers_fired: u64,
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        generation: u32,
        timer: Timer,
    },
}

/// The network and its members.
pub struct Sim {
    pub nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    /// Virtual time since the start.
    pub now: Duration,
    base: Instant,
    /// Directed links that drop everything.
    cut: BTreeSet<(usize, usize)>,
    /// Datagrams sent per node (by the simulation's count).
    pub sent: Vec<u64>,
    /// When each observer last saw each node go down / come up (virtual time).
    pub downs: BTreeMap<(usize, String), Duration>,
    pub ups: BTreeMap<(usize, String), Duration>,
    /// Datagrams to addresses nobody has (seeds without a speaker).
    pub lost: u64,
    /// When set, a copy of every datagram sent.
    pub capture: Option<Vec<Vec<u8>>>,
    /// Share of datagrams lost at random, per million.
    pub loss_ppm: u64,
    /// State of the loss generator (xorshift64, deterministic).
    loss_rng: u64,
}

pub fn addr(i: usize) -> SocketAddr {
    let i = u16::try_from(i).expect("small simulations");
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(
            192,
            0,
            2 + (i / 250) as u8,
            (i % 250) as u8 + 1,
        )),
        super::DEFAULT_PORT,
    )
}

pub fn name(i: usize) -> String {
    format!("node-{i:03}")
}

impl Sim {
    /// `n` members with the same secret and timing; nothing sent yet.
    pub fn new(n: usize, timing: &Timing) -> Sim {
        let secret = b"sixteen-byte-secret-for-the-sim!";
        let mut sim = Sim {
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            now: Duration::ZERO,
            base: Instant::now(),
            cut: BTreeSet::new(),
            sent: vec![0; n],
            downs: BTreeMap::new(),
            ups: BTreeMap::new(),
            lost: 0,
            capture: None,
            loss_ppm: 0,
            loss_rng: 0x9e37_79b9_7f4a_7c15,
        };
        for i in 0..n {
            let auth = Auth::secret(secret).expect("long enough");
            sim.add(i, auth, timing.clone(), 1);
        }
        sim
    }

    fn add(&mut self, i: usize, auth: Auth, timing: Timing, boot: u64) {
        let id = NodeId {
            node: name(i),
            addr: addr(i),
            boot,
        };
        let m = Membership::new(id, auth, timing, 0xF0CA + i as u64 * 7919).expect("valid");
        let node = Node {
            m,
            run: Run::Running,
            generation: 0,
            backlog: Vec::new(),
            ack_deadline: None,
            timers_fired: 0,
        };
        if i < self.nodes.len() {
            self.nodes[i] = node;
        } else {
            self.nodes.push(node);
            self.sent.resize(self.nodes.len(), 0);
        }
        self.by_addr.insert(addr(i), i);
    }

    /// Restart node `i` as a fresh process (new boot) with `auth`.
    pub fn restart(&mut self, i: usize, auth: Auth, timing: Timing, boot: u64) {
        let generation = self.nodes[i].generation + 1;
        self.add(i, auth, timing, boot);
        self.nodes[i].generation = generation;
    }

    pub fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// Give node `i` a seed list.
    pub fn seed(&mut self, i: usize, seeds: Vec<SocketAddr>) {
        self.input(i, Input::SetSeeds(seeds));
    }

    /// Every node seeds with every address (what the driver derives from the Node objects),
    /// at staggered moments over 100 ms so that their probe timers are out of phase, as
    /// they are on real machines.
    pub fn seed_all(&mut self) {
        let all: Vec<SocketAddr> = (0..self.nodes.len()).map(addr).collect();
        let mut order: Vec<(u64, usize)> = (0..self.nodes.len())
            .map(|i| ((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 100_000, i))
            .collect();
        order.sort();
        let start = self.now;
        for (offset_us, i) in order {
            self.run_for(start + Duration::from_micros(offset_us) - self.now);
            self.seed(i, all.clone());
        }
    }

    pub fn input(&mut self, i: usize, input: Input<'_>) {
        let now = self.instant();
        let actions = self.nodes[i].m.handle(now, input);
        self.carry_out(i, actions);
    }

    /// Put raw bytes on the wire to node `to`, as if from `from`.
    pub fn inject(&mut self, to: usize, from: SocketAddr, bytes: Vec<u8>) {
        self.push(self.now + LATENCY, Event::Deliver { to, from, bytes });
    }

    pub fn kill(&mut self, i: usize) {
        self.nodes[i].run = Run::Dead;
        self.nodes[i].backlog.clear();
    }

    pub fn pause(&mut self, i: usize) {
        self.nodes[i].run = Run::Paused;
    }

    /// Resume a paused node: everything that waited is handled now, timers late.
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].run = Run::Running;
        for event in std::mem::take(&mut self.nodes[i].backlog) {
            self.dispatch(event);
        }
    }

    /// Drop everything between `a` and `b`, both ways.
    pub fn cut_link(&mut self, a: usize, b: usize) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    pub fn heal_all(&mut self) {
        self.cut.clear();
    }

    fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn carry_out(&mut self, i: usize, actions: Vec<Action>) {
        let generation = self.nodes[i].generation;
        for action in actions {
            match action {
                Action::Send { to, bytes } => {
                    self.sent[i] += 1;
                    if let Some(wire) = &mut self.capture {
                        wire.push(bytes.clone());
                    }
                    let lost = self.loss_ppm > 0 && self.roll() < self.loss_ppm;
                    match self.by_addr.get(&to) {
                        Some(&j) if !lost && !self.cut.contains(&(i, j)) => self.push(
                            self.now + LATENCY,
                            Event::Deliver {
                                to: j,
                                from: addr(i),
                                bytes,
                            },
                        ),
                        _ => self.lost += 1,
                    }
                }
                Action::Schedule { after, timer } => {
                    let ack_deadline = timer.is_ack_deadline();
                    self.push(
                        self.now + after,
                        Event::Timer {
                            node: i,
                            generation,
                            timer,
                        },
                    );
                    if ack_deadline {
                        self.nodes[i].ack_deadline = Some(self.seq);
                    }
                }
                // Sequence numbers are never reused: one that already fired is simply gone.
                Action::CancelAckDeadline => {
                    if let Some(seq) = self.nodes[i].ack_deadline.take() {
                        self.events.remove(&seq);
                    }
                }
                Action::MemberDown { node } => {
                    self.downs.insert((i, node), self.now);
                }
                Action::MemberUp { node, .. } => {
                    self.ups.insert((i, node), self.now);
                }
                Action::Rejoined { .. }
                | Action::Isolated
                | Action::Connected
                | Action::RestartsChanged => {}
            }
        }
    }

    /// A pseudo-random number in 0..1_000_000.
    fn roll(&mut self) -> u64 {
        let mut x = self.loss_rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.loss_rng = x;
        x % 1_000_000
    }

    fn dispatch(&mut self, event: Event) {
        let i = match &event {
            Event::Deliver { to, .. } => *to,
            Event::Timer { node, .. } => *node,
        };
        match self.nodes[i].run {
            Run::Dead => return,
            Run::Paused => {
                self.nodes[i].backlog.push(event);
                return;
            }
            Run::Running => {}
        }
        match event {
            Event::Deliver { from, bytes, .. } => self.input(
                i,
                Input::Datagram {
                    from,
                    bytes: &bytes,
                },
            ),
            Event::Timer {
                generation, timer, ..
            } => {
                if generation == self.nodes[i].generation {
                    self.nodes[i].timers_fired += 1;
                    self.input(i, Input::Timer(timer));
                }
            }
        }
    }

    /// Advance to the next event and handle it; false when nothing is left.
    fn step(&mut self, until: Duration) -> bool {
        let Some(&Reverse((at, seq))) = self.queue.peek() else {
            return false;
        };
        if at > until {
            return false;
        }
        self.queue.pop();
        self.now = self.now.max(at);
        if let Some(event) = self.events.remove(&seq) {
            self.dispatch(event);
        }
        true
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.step(until) {}
        self.now = until;
    }

    /// Run until `done` holds (checked after every event) or `limit` elapses; returns the
    /// virtual time taken, or `None` on time-out.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> Option<Duration> {
        let start = self.now;
        let until = start + limit;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if !self.step(until) {
                self.now = until;
                return done(self).then(|| self.now - start);
            }
        }
    }

    /// Indices of the nodes that are running.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].run == Run::Running)
            .collect()
    }

    /// Every running node sees exactly the running nodes (by name) as alive.
    pub fn converged(&self) -> bool {
        let want: BTreeSet<String> = self.running().into_iter().map(name).collect();
        self.running()
            .into_iter()
            .all(|i| self.nodes[i].m.alive_nodes() == want)
    }

    /// Every running node other than `k` sees `k` as dead.
    pub fn all_see_dead(&self, k: usize) -> bool {
        let n = name(k);
        self.running()
            .into_iter()
            .filter(|&i| i != k)
            .all(|i| !self.nodes[i].m.alive_nodes().contains(&n))
    }
}
