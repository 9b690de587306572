//! The `ferrolb-controller` binary's parts: the shared cluster sources (`ferrolb-cluster`:
//! Kubernetes and a standalone manifest directory), adapted to the allocation core's inputs
//! ([`inputs`]), feed one event loop that drives the pure allocation core
//! ([`ferrolb_shared::reconcile`]) and carries out its actions through a [`sink::Sink`].

pub mod check;
pub mod crds;
pub mod event_loop;
pub mod inputs;
pub mod install;
pub mod kubernetes;
pub mod metrics;
pub mod sink;
pub mod standalone;
pub mod status;
