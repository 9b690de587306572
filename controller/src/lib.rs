//! The `ferrolb-controller` binary's parts: cluster sources (Kubernetes and a standalone
//! manifest directory) feed one event loop that drives the pure allocation core
//! ([`ferrolb_shared::reconcile`]) and carries out its actions through a [`sink::Sink`].

pub mod check;
pub mod crds;
pub mod event_loop;
pub mod kubernetes;
pub mod metrics;
pub mod sink;
pub mod standalone;
