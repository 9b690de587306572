//! The Kubernetes cluster source and sink (being written).

use crate::metrics::Metrics;
use ferrolb_shared::reconcile::Reconciler;
use std::sync::Arc;

pub async fn run(
    _reconciler: Reconciler,
    _metrics: Arc<Metrics>,
    _namespace: &str,
    _identity: &str,
) -> anyhow::Result<()> {
    anyhow::bail!("Kubernetes mode is not implemented yet; use --manifests DIR")
}
