//! From "this node is elected for these IPs" to "this node answers for these IPs now", so that
//! two nodes never answer for one IP at the same moment.
//!
//! Every speaker computes the same election, but not at the same instant: a Service change
//! or a membership change reaches each one a few milliseconds apart. Releasing is therefore
//! immediate, and taking an IP over from a node that is still alive (a planned move: a node
//! returning after its hold-down, an endpoint moving, an advertisement edited) waits
//! [`Handover::delay`], time for the old owner to see the same change and stop. Taking over
//! from a dead node, or an IP nobody had, is immediate: that is the failover path, and every
//! millisecond there is outage.
//!
//! Pure: the driver passes `now` in and calls [`Handover::update`] again at
//! [`Handover::next_deadline`].

use super::election::{Election, Interfaces, Liveness};
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The default wait before taking an IP from a live node.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(250);

/// What changed in one [`Handover::update`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// IPs this node starts answering for (announce them gratuitously).
    pub acquired: Vec<IpAddr>,
    /// IPs this node stops answering for.
    pub released: Vec<IpAddr>,
    /// Owned IPs whose interfaces changed.
    pub moved: Vec<IpAddr>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.acquired.is_empty() && self.released.is_empty() && self.moved.is_empty()
    }
}

/// The IPs one node answers for, kept in line with successive elections.
#[derive(Clone, Debug)]
pub struct Handover {
    node: String,
    delay: Duration,
    owned: BTreeMap<IpAddr, Interfaces>,
    /// Elected but waiting for the old owner to let go: when, and where to announce.
    pending: BTreeMap<IpAddr, (Instant, Interfaces)>,
    /// Every IP's owner in the last election (whoever it was).
    owners: BTreeMap<IpAddr, String>,
}

impl Handover {
    pub fn new(node: impl Into<String>, delay: Duration) -> Self {
        Handover {
            node: node.into(),
            delay,
            owned: BTreeMap::new(),
            pending: BTreeMap::new(),
            owners: BTreeMap::new(),
        }
    }

    /// What this node answers for now, and on which interfaces.
    pub fn owned(&self) -> &BTreeMap<IpAddr, Interfaces> {
        &self.owned
    }

    /// Elected here but not answered for yet.
    pub fn pending(&self) -> impl Iterator<Item = &IpAddr> {
        self.pending.keys()
    }

    /// When [`Self::update`] must run again for a pending takeover.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|(at, _)| *at).min()
    }

    /// Follow `election` at `now`. `alive` says whether a node is alive (a previous owner that
    /// is not will never answer again, so its IPs are taken at once).
    pub fn update(
        &mut self,
        now: Instant,
        election: &Election,
        alive: impl Fn(&str) -> bool,
    ) -> Changes {
        let mut changes = Changes::default();
        let mine: BTreeMap<IpAddr, &Interfaces> = election
            .owned_by(&self.node)
            .map(|(ip, a)| (ip, &a.interfaces))
            .collect();
        let gone: Vec<IpAddr> = self
            .owned
            .keys()
            .filter(|ip| !mine.contains_key(ip))
            .copied()
            .collect();
        for ip in gone {
            self.owned.remove(&ip);
            changes.released.push(ip);
        }
        self.pending.retain(|ip, _| mine.contains_key(ip));
        for (ip, interfaces) in mine {
            if let Some(current) = self.owned.get_mut(&ip) {
                if current != interfaces {
                    *current = interfaces.clone();
                    changes.moved.push(ip);
                }
                continue;
            }
            let due = match self.pending.get(&ip) {
                Some((due, _)) => *due,
                None => match self.owners.get(&ip) {
                    Some(previous) if previous != &self.node && alive(previous) => {
                        now.checked_add(self.delay).unwrap_or(now)
                    }
                    _ => now,
                },
            };
            if due <= now {
                self.pending.remove(&ip);
                self.owned.insert(ip, interfaces.clone());
                changes.acquired.push(ip);
            } else {
                self.pending.insert(ip, (due, interfaces.clone()));
            }
        }
        self.owners = election
            .assignments
            .iter()
            .map(|(ip, a)| (*ip, a.node.clone()))
            .collect();
        changes
    }
}

/// How alive each node is, from what the speaker knows: the gossip membership (the fast,
/// first-hand view), the Nodes' `Ready` condition (the slow, authoritative one) and the
/// hold-down rules.
#[derive(Clone, Debug)]
pub struct LivenessView<'a> {
    /// Alive speakers with their boot numbers (start time, ms since the epoch); `None` when
    /// gossip is off, and only Node readiness counts.
    pub members: Option<&'a BTreeMap<String, u64>>,
    /// Nodes whose speaker announced a planned restart, with its deadline (ms since the
    /// epoch; `l2::gossip::restart`): alive while absent from `members` until then.
    pub restarting: Option<&'a BTreeMap<String, u64>>,
    /// Wall-clock now, ms since the epoch (compared with boot numbers).
    pub now_ms: u64,
    pub hold: Duration,
}

impl LivenessView<'_> {
    /// A node is dead when its Node says it is not Ready, or (with gossip) when no speaker of
    /// that name is alive; held down while its speaker, started late (see `late_starter`), is
    /// younger than the hold-down. A speaker back from the dead (paused, cut off) has a new
    /// boot number too, the time it rejoined: every speaker sees the same boot numbers, so
    /// they all agree when the hold-down ends, to the millisecond (give or take clock skew,
    /// which the handover delay absorbs). A speaker gone for a planned restart stays alive
    /// until its notice's deadline: its node still forwards, and its replacement takes its
    /// addresses back as their owner.
    pub fn of(&self, snapshot: &Snapshot, node: &str) -> Liveness {
        if !node_ready(snapshot, node) {
            return Liveness::Dead;
        }
        let boot = match self.members {
            None => None,
            Some(members) => match members.get(node) {
                None if self.restarting_until(node).is_some() => return Liveness::Alive,
                None => return Liveness::Dead,
                Some(boot) => Some(*boot),
            },
        };
        let hold_ms = u64::try_from(self.hold.as_millis()).unwrap_or(u64::MAX);
        let young =
            boot.is_some_and(|b| self.late_starter(b) && self.now_ms < b.saturating_add(hold_ms));
        if young {
            Liveness::HeldDown
        } else {
            Liveness::Alive
        }
    }

    /// A speaker that started more than a hold-down after the oldest one: it joins a running
    /// cluster (a restart, a new node), so it is held down. Speakers that started together
    /// (a new cluster, all nodes booting) are not, or their hold-downs, ending a few
    /// milliseconds apart, would reshuffle every address for nothing.
    fn late_starter(&self, boot: u64) -> bool {
        let hold_ms = u64::try_from(self.hold.as_millis()).unwrap_or(u64::MAX);
        let oldest = self.members.and_then(|m| m.values().min().copied());
        oldest.is_some_and(|o| boot > o.saturating_add(hold_ms))
    }

    /// The deadline of `node`'s restart notice, if it has one not yet passed.
    fn restarting_until(&self, node: &str) -> Option<u64> {
        self.restarting?
            .get(node)
            .copied()
            .filter(|until| *until > self.now_ms)
    }

    /// When the next liveness changes by the clock alone (ms since the epoch): the youngest
    /// held-down speaker's hold-down ends, or a restarting speaker's deadline passes.
    pub fn next_change_ms(&self) -> Option<u64> {
        let hold_ms = u64::try_from(self.hold.as_millis()).unwrap_or(u64::MAX);
        let members = self.members?;
        let hold_downs = members
            .values()
            .filter(|b| self.late_starter(**b))
            .map(|b| b.saturating_add(hold_ms));
        let restarts = self
            .restarting
            .into_iter()
            .flatten()
            .filter(|(node, _)| !members.contains_key(*node))
            .map(|(_, until)| *until);
        hold_downs
            .chain(restarts)
            .filter(|end| *end > self.now_ms)
            .min()
    }
}

/// The Node's `Ready` condition, if it has one, is not `False` or `Unknown`. A Node without
/// conditions (standalone manifests) counts as ready: absence of news is not death.
pub fn node_ready(snapshot: &Snapshot, node: &str) -> bool {
    let Some(n) = snapshot.nodes.get(node) else {
        return false;
    };
    !n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status != "True")
}

#[cfg(test)]
mod tests;
