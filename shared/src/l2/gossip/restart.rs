//! Planned restarts: "node X is restarting, keep counting it alive until T".
//!
//! A speaker stopped to be replaced at once (a DaemonSet's rolling update, `--on-stop keep`)
//! leaves its node's data path programmed, so the connections through the addresses it
//! announces keep flowing, as long as the clients keep sending to that node. If the other
//! speakers took those addresses over, as they do when a speaker leaves or dies, the
//! clients would follow the new announcer's gratuitous ARP / NA to a node without their
//! connections' state, and every established connection would break. So before it leaves,
//! the stopping speaker spreads a notice as a foca custom broadcast; the others count its
//! node alive until the notice's deadline (`l2::handover::LivenessView`), and the replacement
//! speaker, started within it, takes the addresses back as their owner, without a move.
//!
//! A notice is superseded, and no longer counts, once a newer incarnation of its node is an
//! alive member: a replacement that crashes right after its start fails over at once, as any
//! crash does. A speaker that never comes back loses its addresses at the deadline.
//!
//! ```text
//! notice := kind(u8: 1) boot(u64) until_ms(u64) name_len(u8) name(utf-8)
//! ```
//!
//! Only sealed (authenticated) datagrams reach this decoder; it still checks every length
//! and never panics. The board is bounded ([`MAX_NOTICES`]).

use super::NodeId;
use super::codec::MAX_NAME_LEN;
use foca::{BroadcastHandler, Invalidates};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// At most this many nodes' notices are remembered; past it, the earliest deadlines go.
pub const MAX_NOTICES: usize = 1024;
const KIND: u8 = 1;

/// "`node`'s speaker, incarnation `boot`, is restarting; count it alive until `until_ms`"
/// (wall clock, ms since the epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartNotice {
    pub node: String,
    pub boot: u64,
    pub until_ms: u64,
}

/// Why a notice could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("restart notice truncated or with trailing bytes")]
    Length,
    #[error("unknown broadcast kind {0}")]
    Kind(u8),
    #[error("restart notice node name is empty, too long or not UTF-8")]
    Name,
}

impl RestartNotice {
    pub fn encode(&self) -> Vec<u8> {
        let name = &self.node.as_bytes()[..self.node.len().min(MAX_NAME_LEN)];
        let mut out = Vec::with_capacity(18 + name.len());
        out.push(KIND);
        out.extend_from_slice(&self.boot.to_be_bytes());
        out.extend_from_slice(&self.until_ms.to_be_bytes());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, NoticeError> {
        let (&kind, rest) = bytes.split_first().ok_or(NoticeError::Length)?;
        if kind != KIND {
            return Err(NoticeError::Kind(kind));
        }
        if rest.len() < 17 {
            return Err(NoticeError::Length);
        }
        let (boot, rest) = rest.split_at(8);
        let (until, rest) = rest.split_at(8);
        let (&len, name) = rest.split_first().ok_or(NoticeError::Length)?;
        if name.len() != usize::from(len) {
            return Err(NoticeError::Length);
        }
        let node = std::str::from_utf8(name).map_err(|_| NoticeError::Name)?;
        if node.is_empty() {
            return Err(NoticeError::Name);
        }
        let u64_of = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        Ok(RestartNotice {
            node: node.to_owned(),
            boot: u64_of(boot),
            until_ms: u64_of(until),
        })
    }

    fn rank(&self) -> (u64, u64) {
        (self.boot, self.until_ms)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    notice: RestartNotice,
    /// A newer incarnation of the node has been seen alive: the restart is over.
    superseded: bool,
}

/// The notices this member knows, shared between foca's broadcast handler and the
/// [`super::Membership`] that reads them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Board(Arc<Mutex<Notices>>);

#[derive(Debug, Default)]
struct Notices {
    by_node: BTreeMap<String, Entry>,
    /// What [`Board::restarting`] returns changed since [`Board::take_changed`] last said so.
    changed: bool,
}

impl Board {
    fn with<R>(&self, f: impl FnOnce(&mut Notices) -> R) -> R {
        // A panic while holding the lock cannot leave the map half-changed (each change is
        // one insert or flag), so a poisoned lock is still usable.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether the restarting set changed since the last call (which clears it).
    pub(crate) fn take_changed(&self) -> bool {
        self.with(|n| std::mem::take(&mut n.changed))
    }

    /// Whether the restarting set changed, without clearing it.
    pub(crate) fn changed(&self) -> bool {
        self.with(|n| n.changed)
    }

    /// Record `notice` if it is news (no notice of its node, or an older one).
    fn learn(&self, notice: &RestartNotice) -> bool {
        self.with(|n| {
            let map = &mut n.by_node;
            if map
                .get(&notice.node)
                .is_some_and(|e| e.notice.rank() >= notice.rank())
            {
                return false;
            }
            map.insert(
                notice.node.clone(),
                Entry {
                    notice: notice.clone(),
                    superseded: false,
                },
            );
            while map.len() > MAX_NOTICES {
                let earliest = map
                    .iter()
                    .min_by_key(|(_, e)| (e.notice.until_ms, e.notice.boot))
                    .map(|(k, _)| k.clone());
                match earliest {
                    Some(k) => map.remove(&k),
                    None => break,
                };
            }
            n.changed = true;
            true
        })
    }

    /// Mark superseded every notice whose node is alive (`alive` says with which boot)
    /// under a newer incarnation than the one that announced the restart.
    pub(crate) fn supersede(&self, alive: impl Fn(&str) -> Option<u64>) {
        self.with(|n| {
            for e in n.by_node.values_mut().filter(|e| !e.superseded) {
                if alive(&e.notice.node).is_some_and(|boot| boot > e.notice.boot) {
                    e.superseded = true;
                    n.changed = true;
                }
            }
        });
    }

    /// Nodes restarting, with their deadlines (ms since the epoch; some may be past).
    pub(crate) fn restarting(&self) -> BTreeMap<String, u64> {
        self.with(|n| {
            n.by_node
                .iter()
                .filter(|(_, e)| !e.superseded)
                .map(|(k, e)| (k.clone(), e.notice.until_ms))
                .collect()
        })
    }

    pub(crate) fn handler(&self) -> Handler {
        Handler(self.clone())
    }
}

/// foca's custom broadcast handler: decodes notices and keeps the news.
pub(crate) struct Handler(Board);

/// Identifies a notice in foca's broadcast queue: a newer notice of the same node replaces
/// an older one still being passed on.
#[derive(Debug)]
pub(crate) struct NoticeKey {
    node: String,
    rank: (u64, u64),
}

impl Invalidates for NoticeKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node && self.rank >= other.rank
    }
}

impl BroadcastHandler<NodeId> for Handler {
    type Key = NoticeKey;
    type Error = NoticeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&NodeId>,
    ) -> Result<Option<NoticeKey>, NoticeError> {
        let notice = RestartNotice::decode(data)?;
        if !self.0.learn(&notice) {
            return Ok(None);
        }
        Ok(Some(NoticeKey {
            rank: notice.rank(),
            node: notice.node,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(node: &str, boot: u64, until_ms: u64) -> RestartNotice {
        RestartNotice {
            node: node.into(),
            boot,
            until_ms,
        }
    }

    #[test]
    fn a_notice_encodes_to_fixed_bytes_and_back() {
        let n = notice("a", 0x0102, 0x0304);
        let bytes = n.encode();
        assert_eq!(
            bytes,
            [1, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 3, 4, 1, b'a']
        );
        assert_eq!(RestartNotice::decode(&bytes), Ok(n));
    }

    #[test]
    fn hostile_notices_are_refused() {
        let good = notice("node-1", 5, 6).encode();
        for cut in 0..good.len() {
            assert_eq!(
                RestartNotice::decode(&good[..cut]),
                Err(NoticeError::Length),
                "{cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(RestartNotice::decode(&long), Err(NoticeError::Length));
        let mut kind = good.clone();
        kind[0] = 9;
        assert_eq!(RestartNotice::decode(&kind), Err(NoticeError::Kind(9)));
        let mut utf8 = good.clone();
        *utf8.last_mut().unwrap() = 0xff;
        assert_eq!(RestartNotice::decode(&utf8), Err(NoticeError::Name));
        let empty = notice("", 1, 2).encode();
        assert_eq!(RestartNotice::decode(&empty), Err(NoticeError::Name));
    }

    #[test]
    fn only_news_is_passed_on_and_a_newer_incarnation_ends_the_restart() {
        let board = Board::default();
        let mut h = board.handler();
        let first = notice("a", 10, 1000).encode();
        assert!(h.receive_item(&first, None).unwrap().is_some());
        assert!(h.receive_item(&first, None).unwrap().is_none(), "not news");
        let older = notice("a", 9, 5000).encode();
        assert!(h.receive_item(&older, None).unwrap().is_none());
        assert_eq!(board.restarting(), BTreeMap::from([("a".into(), 1000)]));
        assert!(board.take_changed());
        assert!(!board.take_changed(), "cleared");
        // The same incarnation alive (the notice arrived before its leave): still restarting.
        board.supersede(|n| (n == "a").then_some(10));
        assert_eq!(board.restarting().len(), 1);
        assert!(!board.changed(), "nothing changed");
        board.supersede(|n| (n == "a").then_some(11));
        assert!(board.restarting().is_empty());
        assert!(board.take_changed());
        // Passed on again by a slower member: known, not revived.
        assert!(h.receive_item(&first, None).unwrap().is_none());
        assert!(board.restarting().is_empty());
        // A later restart of the new incarnation counts again.
        let second = notice("a", 11, 9000).encode();
        assert!(h.receive_item(&second, None).unwrap().is_some());
        assert_eq!(board.restarting(), BTreeMap::from([("a".into(), 9000)]));
    }

    #[test]
    fn the_board_is_bounded() {
        let board = Board::default();
        for i in 0..(MAX_NOTICES as u64 + 10) {
            board.learn(&notice(&format!("n{i}"), 1, 1000 + i));
        }
        let left = board.restarting();
        assert_eq!(left.len(), MAX_NOTICES);
        assert!(!left.contains_key("n0"), "the earliest deadline went first");
    }

    #[test]
    fn a_newer_notice_replaces_an_older_one_in_the_queue() {
        let old = NoticeKey {
            node: "a".into(),
            rank: (1, 10),
        };
        let new = NoticeKey {
            node: "a".into(),
            rank: (1, 20),
        };
        let other = NoticeKey {
            node: "b".into(),
            rank: (5, 50),
        };
        assert!(new.invalidates(&old));
        assert!(!old.invalidates(&new));
        assert!(!other.invalidates(&old));
    }
}
