//! The speaker's one event loop: cluster events in, consistent snapshots out.
//!
//! ```text
//!  source task ──ClusterEvent──▶ mpsc ──▶ event loop ──Arc<Snapshot>──▶ watch ──┬─▶ dataplane task
//!  (kube watchers, or the                  │ SnapshotBuilder::apply          │   (dataplane::spawn)
//!   manifest + status dirs)                │ (pure, ferrolb-shared)          └─▶ later: layer 2, BGP
//!                                          └──▶ Metrics, summary log ◀── metrics server task
//!                                                                          (/metrics /healthz /readyz)
//!  main: SIGTERM / SIGINT ──▶ drops everything
//! ```
//!
//! Events that arrive together are applied as one batch and published as one snapshot; after
//! the first event of a batch the loop waits a short `coalesce` window for the rest of a burst
//! (a relist, an editor saving several files), so consumers are not woken for every object.
//! Nothing is published before the source's first full listing.

use crate::metrics::Metrics;
use crate::snapshots::SnapshotSender;
use ferrolb_cluster::ClusterEvent;
use ferrolb_shared::reconcile::summarize;
use ferrolb_shared::snapshot::{Applied, SnapshotBuilder, Summary};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Largest number of events applied in one batch, so a huge backlog still publishes.
const MAX_BATCH: usize = 4096;
/// How long a batch waits for more events after its first one, by default.
pub const COALESCE: Duration = Duration::from_millis(10);

/// Run until the source's channel closes. Returns the builder for inspection.
pub async fn run(
    mut events: mpsc::Receiver<ClusterEvent>,
    mut builder: SnapshotBuilder,
    snapshots: SnapshotSender,
    metrics: Arc<Metrics>,
    coalesce: Duration,
) -> SnapshotBuilder {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut logged: Option<Summary> = None;
    while events.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + coalesce;
        while batch.len() < MAX_BATCH {
            let room = MAX_BATCH - batch.len();
            match tokio::time::timeout_at(deadline, events.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break, // closed, or the burst is over
                Ok(_) => {}
            }
        }
        let started = Instant::now();
        metrics.events.inc_by(batch.len() as u64);
        for event in batch.drain(..) {
            let applied = builder.apply(event);
            log_applied(&builder, applied);
        }
        if let Some(snapshot) = builder.publish() {
            let summary = snapshot.summary();
            metrics.set_snapshot(snapshot.generation, &summary);
            if logged != Some(summary) {
                tracing::info!(generation = snapshot.generation, "snapshot: {summary}");
                logged = Some(summary);
            } else {
                tracing::debug!(generation = snapshot.generation, "snapshot: {summary}");
            }
            snapshots.publish(snapshot);
            if !metrics.ready.swap(true, Ordering::Relaxed) {
                tracing::info!("initial sync complete: serving snapshots");
            }
        }
        metrics
            .batch_duration
            .observe(started.elapsed().as_secs_f64());
    }
    builder
}

fn log_applied(builder: &SnapshotBuilder, applied: Applied) {
    match applied {
        Applied::ConfigAccepted => {
            if let Some(config) = &builder.current().config {
                tracing::info!("configuration accepted: {}", summarize(config));
            }
        }
        Applied::ConfigRejected(errors) => {
            tracing::error!(
                errors = errors.len(),
                "configuration rejected; the last good configuration stays in force"
            );
            for e in errors {
                tracing::error!("  {e}");
            }
        }
        Applied::Synced => tracing::debug!("the source's first full listing is in"),
        Applied::Objects | Applied::Unchanged => {}
    }
}
