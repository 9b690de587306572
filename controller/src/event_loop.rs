//! The controller's one event loop.
//!
//! ```text
//!  source task ──Input──▶ mpsc ──▶ event loop ──▶ Reconciler::handle ──Action──▶ Sink
//!  (kube watchers, or                  │                                  (API server, or
//!   the manifest directory)            └──▶ Metrics                         status files)
//! ```
//!
//! Inputs that arrive together are handled as one batch, so a burst of changes costs one
//! round of sink writes and metric updates.

use crate::metrics::Metrics;
use crate::sink::Sink;
use ferrolb_shared::reconcile::{Action, EventType, Input, Reconciler};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::mpsc;

/// Largest number of inputs handled in one batch, so a huge backlog still flushes regularly.
const MAX_BATCH: usize = 4096;

/// Run until the input channel closes. Returns the reconciler for inspection.
pub async fn run<S: Sink>(
    mut inputs: mpsc::Receiver<Input>,
    mut reconciler: Reconciler,
    mut sink: S,
    metrics: Arc<Metrics>,
) -> Reconciler {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inputs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let started = Instant::now();
        let mut synced = false;
        let mut actions = Vec::new();
        for input in batch.drain(..) {
            synced |= matches!(input, Input::Synced);
            actions.extend(reconciler.handle(input));
        }
        for action in &actions {
            log_action(action, &metrics);
        }
        let stats = reconciler.pool_stats();
        metrics.set_pools(&stats);
        metrics
            .services_allocated
            .set(i64::try_from(reconciler.allocated_services()).unwrap_or(i64::MAX));
        metrics
            .services_waiting
            .set(i64::try_from(reconciler.waiting().count()).unwrap_or(i64::MAX));
        metrics
            .config_loaded
            .set(i64::from(reconciler.config().is_some()));
        metrics
            .config_stale
            .set(i64::from(reconciler.config_stale()));
        if !actions.is_empty() {
            sink.apply(actions).await;
        }
        sink.pools(&stats).await;
        metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        if synced {
            metrics.ready.store(true, Ordering::Relaxed);
            tracing::info!(
                services = reconciler.allocated_services(),
                "initial sync reconciled"
            );
        }
    }
    reconciler
}

fn log_action(action: &Action, metrics: &Metrics) {
    match action {
        Action::SetStatus { key, ips, pool } => {
            tracing::debug!(service = %key, ?ips, pool, "status set")
        }
        Action::ClearStatus { key } => tracing::debug!(service = %key, "status cleared"),
        Action::Event {
            key,
            kind,
            reason,
            message,
        } => {
            let service = key.as_ref().map(|k| k.to_string()).unwrap_or_default();
            if *reason == "AllocationFailed" {
                metrics.allocation_failures.inc();
            }
            match kind {
                EventType::Normal => tracing::info!(service, reason, "{message}"),
                EventType::Warning => tracing::warn!(service, reason, "{message}"),
            }
        }
        Action::ConfigAccepted { summary } => tracing::info!("configuration accepted: {summary}"),
        Action::ConfigRejected { errors } => {
            tracing::error!(
                errors = errors.len(),
                "configuration rejected; the last good configuration stays in force"
            );
            for e in errors {
                tracing::error!("  {e}");
            }
        }
    }
}
