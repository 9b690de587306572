//! Layer 2 mode, the pure parts: which node announces each LoadBalancer IP ([`election`]) and
//! the ARP and NDP frames the announcer reads and writes ([`packet`]).

pub mod election;
pub mod gossip;
pub mod handover;
pub mod packet;
