//! Kubernetes mode: the API server as cluster source and sink, behind leader election.
//!
//! ```text
//!  leader::Campaign ──"leader until"──▶ run_with_client: waits to lead, then starts ──┐
//!  (Lease, every 2 s)                   and stops everything the moment it is lost   │
//!                                                                                     ▼
//!  source::KubeSource ──Input──▶ mpsc ──▶ event_loop::run ──Action──▶ sink::KubeSink
//!  (8 shared watchers, state::KubeInputs)  (the same loop and core      │ enqueue
//!                                           as standalone mode)         ▼
//!                                                          queue::Writer ──▶ API server
//! ```
//!
//! Only the leader watches and writes; other replicas only read the Lease (and report ready:
//! waiting is their job). Losing the lease (another holder seen, or no successful renewal for
//! `renew_deadline`) makes [`run_with_client`] abort the source, the event loop and the write
//! queue and return an error, so the process exits and Kubernetes restarts it as a fresh
//! standby. That is simpler
//! and safer than re-campaigning in-process: nothing of the old term (queued writes,
//! half-built state) can survive into a new one, and the next term starts from a full listing
//! exactly like any restart, which restart stability already covers.

pub mod events;
pub mod leader;
pub mod memberlist;
pub mod queue;
pub mod sink;
pub mod source;
pub mod state;
pub mod writes;

use crate::event_loop;
use crate::metrics::Metrics;
use anyhow::Context;
pub use ferrolb_cluster::backoff;
use ferrolb_cluster::backoff::WatchBackoff;
pub use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_cluster::task::shutdown_signal;
use ferrolb_shared::lease::LeaseTiming;
use ferrolb_shared::reconcile::Reconciler;
use kube::{Api, Client};
use leader::{Campaign, LEASE_NAME};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// How the Kubernetes mode runs. [`Options::new`] has the production defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The namespace of the leader Lease and of Events about the controller itself.
    pub namespace: String,
    /// This replica's name in the Lease; must differ between replicas.
    pub identity: String,
    pub lease: LeaseTiming,
    /// Read the config kinds from this namespace only; `None`: from every namespace (what
    /// the ClusterRole grants).
    pub config_namespace: Option<String>,
    /// Delay between attempts of a failing watch.
    pub watch_backoff: WatchBackoff,
    /// Objects written concurrently.
    pub write_concurrency: usize,
}

impl Options {
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Options {
            namespace: namespace.into(),
            identity: identity.into(),
            lease: LeaseTiming::default(),
            config_namespace: None,
            watch_backoff: WatchBackoff::default(),
            write_concurrency: 16,
        }
    }
}

/// Run against the cluster found in the environment (in-cluster or kubeconfig) until a
/// signal (then the Lease is released for a fast hand-over) or the loss of leadership (an
/// error).
pub async fn run(
    reconciler: Reconciler,
    metrics: Arc<Metrics>,
    namespace: &str,
    identity: &str,
) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (no in-cluster config, no kubeconfig)")?;
    tracing::info!(namespace, identity, "Kubernetes mode");
    let lease_api = Api::namespaced(client.clone(), namespace);
    let options = Options::new(namespace, identity);
    // The select ends (and drops the controller, stopping every write) before the release.
    let finished = tokio::select! {
        r = run_with_client(client, reconciler, metrics, options) => Some(r),
        _ = shutdown_signal() => None,
    };
    match finished {
        Some(result) => result,
        None => {
            tracing::info!("shutting down");
            Campaign::release(&lease_api, identity).await;
            Ok(())
        }
    }
}

/// Run with the given client: campaign for the Lease, and while leading, watch and write.
/// Returns only on failure; the loss of leadership is one.
pub async fn run_with_client(
    client: Client,
    reconciler: Reconciler,
    metrics: Arc<Metrics>,
    options: Options,
) -> anyhow::Result<()> {
    let span = tracing::info_span!("controller", identity = %options.identity);
    run_inner(client, reconciler, metrics, options)
        .instrument(span)
        .await
}

async fn run_inner(
    client: Client,
    reconciler: Reconciler,
    metrics: Arc<Metrics>,
    options: Options,
) -> anyhow::Result<()> {
    let (lead_tx, mut leading) = watch::channel(None);
    let campaign = Campaign::new(
        client.clone(),
        &options.namespace,
        &options.identity,
        options.lease,
    );
    let _campaign = AbortOnDrop(tokio::spawn(campaign.run(lead_tx).in_current_span()));
    tracing::info!(lease = LEASE_NAME, namespace = %options.namespace, "waiting to lead");
    // A standby is doing its job by waiting, so it reports ready: a Deployment rollout waits
    // for new pods to be ready, and the new pods of a rollout start as standbys.
    metrics.ready.store(true, Ordering::Relaxed);
    anyhow::ensure!(
        leader::acquired(&mut leading).await,
        "leader election stopped"
    );
    // As leader: ready once the first full listing is reconciled (the event loop sets it).
    metrics.ready.store(false, Ordering::Relaxed);
    tracing::info!(lease = LEASE_NAME, "leading: watching and writing");
    // The speakers' gossip key, created if missing (beside the watches: it blocks nothing).
    let _memberlist = AbortOnDrop(tokio::spawn(
        memberlist::ensure_until_done(client.clone(), options.namespace.clone()).in_current_span(),
    ));

    let view = state::SharedView::default();
    let (tx, rx) = mpsc::channel(1024);
    let source = source::KubeSource::new(
        client.clone(),
        options.config_namespace.clone(),
        options.watch_backoff,
        view.clone(),
    );
    let writes = writes::Writes::new(
        client,
        options.namespace.clone(),
        options.identity.clone(),
        view.clone(),
    );
    let sink = sink::KubeSink::new(writes, view, options.write_concurrency);
    let mut source = AbortOnDrop(tokio::spawn(source.run(tx).in_current_span()));
    let mut event_loop = AbortOnDrop(tokio::spawn(
        event_loop::run(rx, reconciler, sink, metrics.clone()).in_current_span(),
    ));
    let result = tokio::select! {
        _ = leader::held_until_lost(&mut leading) => Err(anyhow::anyhow!(
            "lost the leader lease {}/{LEASE_NAME}; stopping", options.namespace
        )),
        r = &mut source.0 => match r {
            Ok(Ok(())) => Err(anyhow::anyhow!("the watch source stopped")),
            Ok(Err(e)) => Err(e.context("watch source")),
            Err(e) => Err(anyhow::anyhow!("watch source task: {e}")),
        },
        _ = &mut event_loop.0 => Err(anyhow::anyhow!("the event loop stopped")),
    };
    // Stop acting now: abort the loop (which drops the sink, and with it the write queue and
    // every write in flight) and wait until it is gone.
    metrics.ready.store(false, Ordering::Relaxed);
    source.0.abort();
    event_loop.0.abort();
    let _ = (&mut source.0).await;
    let _ = (&mut event_loop.0).await;
    result
}
