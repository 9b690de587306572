//! The forwarding layer's pure model, with IPVS semantics: virtual servers, real servers and
//! the schedulers that pick between them. Both data paths (nftables and userspace) are driven
//! from it, so they make the same choices.

pub mod balancer;
pub mod build;
pub mod fixtures;
pub mod genl;
pub mod hash;
pub mod incremental;
pub mod kernel;
pub mod maglev;
pub mod model;
pub mod nft;
pub mod scheduler;
