//! Hold-down: a node that comes back from the dead waits before it may take addresses back.
//!
//! Without it, a node whose health flaps (a lossy link, a node under memory pressure) would
//! pull its addresses back and forth on every flap, and every move costs clients a gratuitous
//! ARP/NA round and, for connection-tracked traffic, their connections. With it, a returning
//! node is ranked last ([`super::Liveness::HeldDown`]) until it has stayed alive for the
//! hold-down time; it still announces an address nobody else can.
//!
//! Pure: the caller passes `now` in and re-runs the election at [`HoldDown::next_change`].

use super::Liveness;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What is known about a node that is not simply eligible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Dead,
    /// Came back; eligible from `until` on (`None`: the hold-down does not fit in an
    /// `Instant`, so never).
    Returning {
        until: Option<Instant>,
    },
}

/// Tracks liveness transitions and says which nodes are eligible.
///
/// A node never reported dead (every node at startup) is eligible at once. Report a node dead
/// only once it has been seen alive, or a late joiner will be held down on first contact.
#[derive(Clone, Debug)]
pub struct HoldDown {
    hold: Duration,
    /// Dead and returning nodes only; eligible ones are forgotten.
    nodes: BTreeMap<String, State>,
}

impl HoldDown {
    pub fn new(hold: Duration) -> Self {
        HoldDown {
            hold,
            nodes: BTreeMap::new(),
        }
    }

    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// `node` is (still) alive at `now`. Only a dead node coming back starts a hold-down;
    /// repeats change nothing.
    pub fn alive(&mut self, node: &str, now: Instant) {
        self.prune(now);
        if let Some(state @ State::Dead) = self.nodes.get_mut(node) {
            *state = State::Returning {
                until: now.checked_add(self.hold),
            };
            self.prune(now); // a zero hold-down is over at once
        }
    }

    /// `node` is dead at `now` (a returning node dies again: its hold-down restarts when it
    /// next comes back).
    pub fn dead(&mut self, node: &str, _now: Instant) {
        self.nodes.insert(node.to_string(), State::Dead);
    }

    /// Forget `node` (its Node object is gone): if it comes back it is new.
    pub fn forget(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Whether `node` may announce at `now`: not dead, and not within a hold-down.
    pub fn eligible(&self, node: &str, now: Instant) -> bool {
        match self.nodes.get(node) {
            None => true,
            Some(State::Dead) => false,
            Some(State::Returning { until }) => until.is_some_and(|u| now >= u),
        }
    }

    /// The election input for `node`, which the caller's other sources consider `alive` or not.
    pub fn liveness(&self, node: &str, alive: bool, now: Instant) -> Liveness {
        if !alive {
            Liveness::Dead
        } else if self.eligible(node, now) {
            Liveness::Alive
        } else {
            // Includes a node still marked dead here: alive by the caller's sources, but its
            // return has not been reported yet, so its hold-down has not even started.
            Liveness::HeldDown
        }
    }

    /// The next instant after `now` at which a node becomes eligible: when to elect again.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        self.nodes
            .values()
            .filter_map(|s| match s {
                State::Returning { until: Some(u) } if *u > now => Some(*u),
                _ => None,
            })
            .min()
    }

    /// Drop hold-downs that are over, so the map holds only dead and returning nodes.
    fn prune(&mut self, now: Instant) {
        self.nodes
            .retain(|_, s| !matches!(s, State::Returning { until: Some(u) } if *u <= now));
    }
}
