//! How the speaker's parts receive the cluster view: a [`SnapshotReceiver`] hands out
//! immutable [`Snapshot`]s, the first once the source's first full listing is in, then one
//! after each batch of changes.
//!
//! It is a `tokio::sync::watch` channel underneath, so a consumer that is slower than the
//! cluster changes never queues up stale snapshots: it skips straight to the newest. Every
//! snapshot is complete, so skipping one loses nothing.

use ferrolb_shared::snapshot::Snapshot;
use std::sync::Arc;
use tokio::sync::watch;

/// The sending half, owned by the event loop.
pub struct SnapshotSender(watch::Sender<Option<Arc<Snapshot>>>);

/// The receiving half. Clone it for each consumer (data path, layer 2, BGP).
#[derive(Clone)]
pub struct SnapshotReceiver {
    rx: watch::Receiver<Option<Arc<Snapshot>>>,
    /// Generation of the snapshot last returned by [`Self::next`].
    seen: u64,
}

/// A connected pair, with no snapshot yet.
pub fn channel() -> (SnapshotSender, SnapshotReceiver) {
    let (tx, rx) = watch::channel(None);
    (SnapshotSender(tx), SnapshotReceiver { rx, seen: 0 })
}

impl SnapshotSender {
    /// Make `snapshot` the newest. Works with no receiver left, too.
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        self.0.send_replace(Some(snapshot));
    }

    /// A new receiver; its first [`SnapshotReceiver::next`] returns the newest snapshot.
    pub fn subscribe(&self) -> SnapshotReceiver {
        SnapshotReceiver {
            rx: self.0.subscribe(),
            seen: 0,
        }
    }
}

impl SnapshotReceiver {
    /// The newest snapshot; `None` until the first full listing is in.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.rx.borrow().clone()
    }

    /// Wait for a snapshot newer than the last one this receiver returned (the first time:
    /// for the first snapshot, or the newest if there is one already). Intermediate snapshots
    /// may be skipped. `None` once the speaker has stopped and nothing newer is left.
    pub async fn next(&mut self) -> Option<Arc<Snapshot>> {
        loop {
            let newest = self.rx.borrow_and_update().clone();
            if let Some(s) = newest.filter(|s| s.generation > self.seen) {
                self.seen = s.generation;
                return Some(s);
            }
            self.rx.changed().await.ok()?;
        }
    }

    /// Wait until the newest snapshot satisfies `f`, and return it; `None` if the speaker
    /// stops first.
    pub async fn wait_for(
        &mut self,
        mut f: impl FnMut(&Snapshot) -> bool,
    ) -> Option<Arc<Snapshot>> {
        loop {
            let s = self.next().await?;
            if f(&s) {
                return Some(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(generation: u64) -> Arc<Snapshot> {
        let mut s = Snapshot::default();
        s.generation = generation;
        Arc::new(s)
    }

    #[tokio::test]
    async fn next_waits_for_the_first_and_then_skips_to_the_newest() {
        let (tx, mut rx) = channel();
        assert!(rx.latest().is_none());
        let waiter = tokio::spawn(async move {
            let first = rx.next().await.unwrap().generation;
            (first, rx)
        });
        tokio::task::yield_now().await;
        tx.publish(snap(1));
        let (first, mut rx) = waiter.await.unwrap();
        assert_eq!(first, 1);
        tx.publish(snap(2));
        tx.publish(snap(3));
        assert_eq!(
            rx.next().await.unwrap().generation,
            3,
            "a slow consumer skips"
        );
        // A late subscriber gets the newest at once.
        let mut late = tx.subscribe();
        assert_eq!(late.next().await.unwrap().generation, 3);
        drop(tx);
        assert!(rx.next().await.is_none(), "stopped, nothing newer");
    }

    #[tokio::test]
    async fn wait_for_a_condition() {
        let (tx, mut rx) = channel();
        for g in 1..=5 {
            tx.publish(snap(g));
        }
        let s = rx.wait_for(|s| s.generation >= 5).await.unwrap();
        assert_eq!(s.generation, 5);
        drop(tx);
        assert!(rx.wait_for(|_| true).await.is_none());
    }
}
