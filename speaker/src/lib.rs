//! The `ferrolb-speaker` binary's parts. So far: the speaker's view of the cluster.
//!
//! A [`source::Source`] (the API server or a manifest directory, through the sources shared
//! with the controller) feeds the [`event_loop`], which builds immutable, consistent
//! [`Snapshot`](ferrolb_shared::snapshot::Snapshot)s with the pure [`SnapshotBuilder`] and
//! hands them out through a [`snapshots::SnapshotReceiver`]. The forwarding layer takes one
//! ([`dataplane::spawn`]); layer 2 and BGP will take theirs the same way.

pub mod bgp;
pub mod dataplane;
pub mod event_loop;
pub mod events;
pub mod gossip;
pub mod layer2;
pub mod metrics;
pub mod on_stop;
pub mod snapshots;
pub mod source;
pub mod status;

use anyhow::Context;
use events::Events;
use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_shared::snapshot::SnapshotBuilder;
use ferrolb_shared::stop::StopKind;
use metrics::Metrics;
use snapshots::SnapshotReceiver;
use source::Source;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// How the speaker runs. [`Options::new`] has the production defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The node this speaker runs on.
    pub node: String,
    pub dataplane: dataplane::Settings,
    /// How long a batch of cluster events waits for the rest of a burst.
    pub coalesce: Duration,
    /// Layer 2 announcements (`None`: off, the library's default; the binary turns them on).
    pub layer2: Option<layer2::L2Settings>,
    /// BGP sessions and advertisements (`None`: off, the library's default; the binary turns
    /// them on).
    pub bgp: Option<bgp::BgpSettings>,
}

impl Options {
    pub fn new(node: impl Into<String>, dataplane: dataplane::Mode) -> Self {
        Options {
            node: node.into(),
            dataplane: dataplane::Settings::new(dataplane),
            coalesce: event_loop::COALESCE,
            layer2: None,
            bgp: None,
        }
    }
}

/// A running speaker.
pub struct Speaker {
    /// Snapshots as they are published (a clone of what the data path receives).
    pub snapshots: SnapshotReceiver,
    pub metrics: Arc<Metrics>,
    /// Ends on failure (the manifest directory cannot be read, the loop stopped), or after
    /// [`Speaker::shutdown`].
    pub task: JoinHandle<anyhow::Result<()>>,
    stop: watch::Sender<Option<StopKind>>,
}

impl Speaker {
    /// Stop: layer 2 stops answering and leaves the gossip (another node takes over at once,
    /// either way); with [`StopKind::Clean`] the data path removes what it programmed and BGP
    /// sessions are ceased, with [`StopKind::Keep`] both stay for the next speaker (see
    /// [`ferrolb_shared::stop`]). Then everything ends.
    pub async fn shutdown(&mut self, kind: StopKind) -> anyhow::Result<()> {
        let _ = self.stop.send(Some(kind));
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(r) => r.context("speaker task")?,
            Err(_) => anyhow::bail!("the speaker did not stop within 10 s"),
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the source, the event loop and the data path hook as tasks. Dropping the returned
/// [`Speaker`] (or aborting its task) stops them all.
pub fn start(source: Source, options: Options, metrics: Arc<Metrics>) -> Speaker {
    let (tx, snapshots) = snapshots::channel();
    let dataplane_rx = tx.subscribe();
    let mut options = options;
    let (mode, why) = dataplane::resolve(options.dataplane.mode);
    tracing::info!(node = %options.node, "data path {mode}: {why}");
    options.dataplane.mode = mode;
    metrics.set_dataplane(mode);
    let span = tracing::info_span!("speaker", node = %options.node);
    let (stop, stopped) = watch::channel(None);
    let task = tokio::spawn(
        run(source, options, metrics.clone(), tx, dataplane_rx, stopped).instrument(span),
    );
    Speaker {
        snapshots,
        metrics,
        task,
        stop,
    }
}

async fn run(
    source: Source,
    options: Options,
    metrics: Arc<Metrics>,
    snapshots: snapshots::SnapshotSender,
    dataplane_rx: SnapshotReceiver,
    stop: watch::Receiver<Option<StopKind>>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(1024);
    let builder = SnapshotBuilder::new(&options.node);
    let events = Events::spawn(source.event_backend(&options.node), options.node.clone());
    let status =
        status::StatusTarget::choose(source.client().cloned(), source.report_dir(&options.node));
    let layer2_rx = snapshots.subscribe();
    let bgp_rx = snapshots.subscribe();
    let namespace = source.namespace().map(str::to_string);
    let config_state = status::config_state::spawn(
        status.clone(),
        options.node.clone(),
        namespace.clone().unwrap_or_else(|| "standalone".into()),
        snapshots.subscribe(),
    );
    let mut source = AbortOnDrop(tokio::spawn(source.run(tx).in_current_span()));
    let mut event_loop = AbortOnDrop(tokio::spawn(
        event_loop::run(rx, builder, snapshots, metrics.clone(), options.coalesce)
            .in_current_span(),
    ));
    // Both stopped cleanly when this task ends normally; aborted with it otherwise (a crash
    // leaves the kernel programmed, so traffic keeps flowing, and the announcements stop).
    let layer2 = options.layer2.clone().map(|mut settings| {
        if settings.status.is_none() {
            settings.status = status.clone();
        }
        layer2::spawn(settings, layer2_rx, events.clone(), metrics.clone())
    });
    let bgp = options.bgp.clone().map(|mut settings| {
        if settings.status.is_none() {
            settings.status = status;
        }
        if let Some(namespace) = namespace.clone() {
            settings.namespace = namespace;
        }
        bgp::spawn(settings, bgp_rx, metrics.clone())
    });
    let dataplane = dataplane::spawn(options.dataplane, dataplane_rx, events);
    let mut stop = stop;
    tokio::select! {
        r = &mut source.0 => match r.context("source task")? {
            Ok(()) => anyhow::bail!("the cluster source stopped"),
            Err(e) => Err(e.context("cluster source")),
        },
        _ = &mut event_loop.0 => anyhow::bail!("the event loop stopped"),
        _ = stop.changed() => {
            let kind = stop.borrow().unwrap_or(StopKind::Clean);
            if let Some(l2) = layer2 {
                l2.stop(kind).await;
            }
            if let Some(bgp) = bgp {
                bgp.stop(kind).await;
            }
            dataplane.stop(kind).await;
            config_state.stop().await;
            Ok(())
        }
    }
}
