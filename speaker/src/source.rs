//! Where the speaker's view comes from: the API server or a manifest directory, through the
//! sources it shares with the controller (`ferrolb-cluster`).
//!
//! Kubernetes mode has no leader election (every node runs a speaker and each needs the whole
//! view); it watches Services, EndpointSlices, every Node (the layer 2 election ranks them
//! all), the config kinds, and Secrets in its own namespace only (BGP passwords; that is all
//! its RBAC grants). Standalone mode reads the same kinds from the directory and the Services'
//! status from the controller's status directory, following changes to both.

use crate::events::Backend;
use ferrolb_cluster::backoff::WatchBackoff;
use ferrolb_cluster::dir::{DirectorySource, StatusDir};
use ferrolb_cluster::files::speaker_report_dir;
use ferrolb_cluster::kubernetes::KubeSource;
use ferrolb_cluster::{ClusterEvent, Kind, Subscription};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// The speaker's cluster source.
pub enum Source {
    Kubernetes {
        client: kube::Client,
        /// The speaker's own namespace, the only one whose Secrets it reads.
        namespace: String,
        backoff: WatchBackoff,
    },
    Directory {
        manifests: PathBuf,
        /// The controller's status directory (`<manifests>.status` by default).
        status_dir: PathBuf,
    },
}

/// What the speaker watches; `namespace` is where its Secrets are.
pub fn subscription(namespace: Option<String>) -> Subscription {
    let mut s = Subscription::new([Kind::Service, Kind::EndpointSlice, Kind::Node, Kind::Secret]);
    s.secrets_namespace = namespace;
    s
}

impl Source {
    /// Standalone mode: where this speaker writes what it announces
    /// (`<status-dir>.speakers/<node>/`).
    pub fn report_dir(&self, node: &str) -> Option<PathBuf> {
        match self {
            Source::Kubernetes { .. } => None,
            Source::Directory { status_dir, .. } => Some(speaker_report_dir(status_dir, node)),
        }
    }

    /// Kubernetes mode: the speaker's namespace (where its ConfigurationState goes).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Source::Kubernetes { namespace, .. } => Some(namespace),
            Source::Directory { .. } => None,
        }
    }

    /// Kubernetes mode: the API server's client (the layer 2 status is written through it).
    pub fn client(&self) -> Option<&kube::Client> {
        match self {
            Source::Kubernetes { client, .. } => Some(client),
            Source::Directory { .. } => None,
        }
    }

    /// Where this speaker's Events go: the API server, or
    /// `<status-dir>.speakers/<node>/events.log` in standalone mode.
    pub fn event_backend(&self, node: &str) -> Backend {
        match self {
            Source::Kubernetes { client, .. } => Backend::Kubernetes(client.clone()),
            Source::Directory { status_dir, .. } => {
                Backend::File(speaker_report_dir(status_dir, node).join("events.log"))
            }
        }
    }

    /// Run until the receiver goes away (or, for a directory, until it cannot be read).
    pub async fn run(self, tx: mpsc::Sender<ClusterEvent>) -> anyhow::Result<()> {
        match self {
            Source::Kubernetes {
                client,
                namespace,
                backoff,
            } => {
                tracing::info!(namespace, "Kubernetes mode");
                KubeSource::new(client, subscription(Some(namespace)), backoff)
                    .run(tx)
                    .await?
            }
            Source::Directory {
                manifests,
                status_dir,
            } => {
                tracing::info!(
                    manifests = %manifests.display(),
                    status = %status_dir.display(),
                    "standalone mode"
                );
                // The operator's directory is the trust boundary here: every Secret in it is
                // the speaker's.
                DirectorySource::new(manifests, subscription(None), StatusDir::Follow(status_dir))
                    .run(tx)
                    .await?
            }
        }
        Ok(())
    }
}
