//! The I/O the controller and the speaker share, so that neither writes it twice:
//!
//! - the two cluster sources, which turn what they observe into one event type,
//!   [`ClusterEvent`]: [`kubernetes::KubeSource`] (`kube-runtime` watchers with backoff and
//!   relist diffing) and [`dir::DirectorySource`] (a manifest directory with inotify, a file
//!   cache and the controller's status directory);
//! - the standalone file layout ([`files`]);
//! - the `/metrics` `/healthz` `/readyz` server ([`http`]) and task plumbing ([`task`]).
//!
//! Each component says what it wants with a [`Subscription`] and receives events through an
//! [`EventSink`]: a channel, or an adapter of its own (the controller turns events into its
//! allocation core's inputs). The decisions (what changed, what a relist means, whether a
//! config is accepted) are pure functions in `ferrolb-shared`; this crate only does the I/O.

pub mod backoff;
pub mod dir;
pub mod events;
pub mod files;
pub mod http;
pub mod kubernetes;
pub mod task;

pub use ferrolb_shared::cluster::{ClusterEvent, Kind, ObjectKey, Subscription};
use std::future::Future;
use tokio::sync::mpsc;

/// The consumer of a source's events went away; the source stops.
#[derive(Debug, thiserror::Error)]
#[error("the consumer of cluster events has gone away")]
pub struct Closed;

/// Where a source delivers its events.
pub trait EventSink: Send {
    /// Deliver `events`, in order. They are one batch: what a scan found, or what one watcher
    /// event meant.
    fn deliver(
        &mut self,
        events: Vec<ClusterEvent>,
    ) -> impl Future<Output = Result<(), Closed>> + Send;
}

impl EventSink for mpsc::Sender<ClusterEvent> {
    async fn deliver(&mut self, events: Vec<ClusterEvent>) -> Result<(), Closed> {
        for event in events {
            self.send(event).await.map_err(|_| Closed)?;
        }
        Ok(())
    }
}
