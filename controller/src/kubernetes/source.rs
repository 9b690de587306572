//! The Kubernetes cluster source as the controller runs it: the shared watchers
//! ([`ferrolb_cluster::kubernetes::KubeSource`]) over Services, Namespaces and the six config
//! kinds, feeding the allocation core through [`KubeInputs`], which keeps the sink's view.

use super::state::{KubeInputs, SharedView};
use crate::inputs;
use ferrolb_cluster::backoff::WatchBackoff;
use ferrolb_shared::reconcile::Input;
use kube::Client;
use tokio::sync::mpsc;

/// Watches the API server and sends [`Input`]s.
pub struct KubeSource {
    client: Client,
    /// Namespace of the config kinds; `None`: all namespaces.
    config_namespace: Option<String>,
    backoff: WatchBackoff,
    view: SharedView,
}

impl KubeSource {
    pub fn new(
        client: Client,
        config_namespace: Option<String>,
        backoff: WatchBackoff,
        view: SharedView,
    ) -> Self {
        KubeSource {
            client,
            config_namespace,
            backoff,
            view,
        }
    }

    /// Watch until the receiver goes away. Never fails because of the API server.
    pub async fn run(self, tx: mpsc::Sender<Input>) -> anyhow::Result<()> {
        let mut subscription = inputs::subscription();
        subscription.config_namespace = self.config_namespace;
        let source =
            ferrolb_cluster::kubernetes::KubeSource::new(self.client, subscription, self.backoff);
        source.run(KubeInputs::new(tx, self.view)).await?;
        Ok(())
    }
}
