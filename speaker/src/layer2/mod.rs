//! Layer 2 mode: one node per LoadBalancer IP answers ARP and NDP for it, chosen by the pure
//! election every speaker computes alike (`ferrolb_shared::l2`), with gossip to agree fast on
//! who is alive. [`driver`] is the event loop; [`announcer`] owns the raw sockets;
//! [`interfaces`] chooses the links and watches their carrier; [`restart_file`] hands a planned
//! restart to the next speaker; [`status`] tells operators which
//! node announces each Service (`ServiceL2Status` objects, or a file in standalone mode).

pub mod announcer;
pub mod driver;
pub mod interfaces;
pub mod restart_file;
pub mod status;

pub use driver::{L2Settings, Layer2, spawn};
