//! FerroLB's pure logic: no sockets, no async runtime, no API server.
//!
//! Everything here is a plain function or a state machine driven by its inputs, so it can be
//! tested exhaustively and shared by the `controller` and `speaker` binaries.

pub mod alloc;
pub mod bfd;
pub mod bgp;
pub mod cluster;
pub mod config;
pub mod endpoints;
pub mod intern;
pub mod ipvs;
pub mod l2;
pub mod lease;
pub mod manifest;
pub mod netlink;
pub mod reconcile;
pub mod selector;
pub mod service;
pub mod small_set;
pub mod snapshot;
pub mod stop;
