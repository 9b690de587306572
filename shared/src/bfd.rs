//! Bidirectional Forwarding Detection (RFC 5880 asynchronous mode, RFC 5881 single hop,
//! RFC 5883 multi-hop), the pure parts: the Control packet codec ([`packet`]), what a
//! received datagram must pass before a session sees it ([`reception`]) and the per-session
//! state machine ([`session`]).
//!
//! BFD is how a BGP session learns in under a second that its peer is gone, instead of
//! waiting for the BGP hold timer (90 s by default). The speaker runs one [`session::Session`]
//! per BGP peer whose `BGPPeer.bfdProfile` names a `BFDProfile`; when the session leaves Up,
//! the BGP session is torn down.
//!
//! ```text
//!   UDP :3784 ──bytes──▶ packet::ControlPacket::parse ──Input::Packet──▶ ┌─────────┐
//!   driver timers ─────────────────────────────────Input::Timer────────▶ │ Session │
//!   BGP side / config ──Input::{Start, AdminDown, AdminUp, Reconfigure}─▶ └────┬────┘
//!        ◀── Action::{Send, Schedule, Cancel, StateChanged} ──────────────────┘
//! ```
//!
//! Nothing here reads a clock or touches a socket: time is an input, jitter comes from an RNG
//! seeded by the caller, and the driver in the speaker owns the socket (TTL 255 out; the
//! received TTL goes to [`reception::accept`]), the timers and the demultiplexing of
//! packets to sessions.

pub mod packet;
pub mod reception;
pub mod session;
