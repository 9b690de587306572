//! Where the allocation core's actions go: the API server, or status files next to a
//! standalone manifest directory.

use ferrolb_shared::alloc::PoolStats;
use ferrolb_shared::reconcile::Action;
use std::future::Future;

/// Carries out actions. Failures are the sink's to log and retry; the event loop never stops
/// because one write failed.
pub trait Sink: Send {
    /// Carry out a batch of actions, in order.
    fn apply(&mut self, actions: Vec<Action>) -> impl Future<Output = ()> + Send;
    /// Publish pool usage (pool status, a status file); called after each batch.
    fn pools(&mut self, stats: &[PoolStats]) -> impl Future<Output = ()> + Send;
}
