//! BGP, the pure parts. [`codec`] turns BGP-4 messages (RFC 4271 and the extensions a
//! LoadBalancer speaker needs: 4-octet AS numbers, multiprotocol IPv6, route refresh,
//! graceful restart, communities and large communities) into bytes and back, checking every
//! length of untrusted input and answering malformed input with the NOTIFICATION the RFCs
//! prescribe. Sessions, timers and route policy live in sibling modules.

pub mod advertise;
pub mod codec;
pub mod session;
