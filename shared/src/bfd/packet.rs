//! The BFD Control packet (RFC 5880 §4.1): a pure codec, no sockets.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`ControlPacket::parse`] applies every reception check of RFC 5880 §6.8.6 that needs only
//! the packet: version 1, Length at least 24 (26 with the A bit) and not beyond the datagram,
//! Detect Mult not zero, Multipoint clear, My Discriminator not zero, Your Discriminator zero
//! only in state Down or AdminDown. What needs a session (is Your Discriminator ours?) is
//! [`Session`](super::session::Session)'s business, and choosing the session for a packet
//! whose Your Discriminator is zero (by source address and interface) is the driver's.
//!
//! **Authentication is not implemented**: a packet with the A bit set is rejected with
//! [`PacketError::Authentication`]. MetalLB's `BFDProfile` has no authentication field, so a
//! FerroLB session never uses authentication (`bfd.AuthType` = 0), and RFC 5880 §6.8.6 then
//! requires exactly this: "If the A bit is set and no authentication is in use, the packet
//! MUST be discarded". The check comes after the structural ones, so a malformed packet is
//! reported as malformed whatever its A bit.
//!
//! Input is untrusted: lengths are checked before any read, nothing indexes a slice with an
//! input-derived value, and the `bfd_packets` fuzz target holds the parser to that. Bytes
//! after Length (UDP padding) are ignored, and so are bytes between 24 and Length when the A
//! bit is clear (a longer Length is not an error in RFC 5880). Every packet we build is the
//! 24-byte mandatory section ([`ControlPacket::to_bytes`]).
//!
//! Intervals are kept in microseconds, as on the wire, so a packet re-encodes bit for bit.

use std::fmt;
use std::num::{NonZeroU8, NonZeroU32};

#[cfg(test)]
mod tests;

/// The protocol version this codec speaks (and the only one that exists).
pub const VERSION: u8 = 1;
/// Length of the mandatory section: every packet FerroLB sends is exactly this long.
pub const MANDATORY_LEN: usize = 24;
/// The smallest Length when the A bit is set: the mandatory section plus Auth Type and Auth
/// Len.
pub const MIN_AUTHENTICATED_LEN: u8 = 26;

const POLL: u8 = 0x20;
const FINAL: u8 = 0x10;
const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
const AUTHENTICATION: u8 = 0x04;
const DEMAND: u8 = 0x02;
const MULTIPOINT: u8 = 0x01;

/// A session state, as carried in the Sta field (RFC 5880 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    /// The 2-bit wire value.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The state of a 2-bit wire value (the upper bits are ignored).
    pub fn from_code(code: u8) -> State {
        match code & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Why the sender's session last changed state (the Diag field, RFC 5880 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0
    NoDiagnostic,
    /// 1: no packet from the remote system for a Detection Time.
    ControlDetectionTimeExpired,
    /// 2
    EchoFunctionFailed,
    /// 3: the remote system said Down (or AdminDown) while we were Init or Up.
    NeighborSignaledSessionDown,
    /// 4
    ForwardingPlaneReset,
    /// 5
    PathDown,
    /// 6
    ConcatenatedPathDown,
    /// 7: taken down by the operator (or by FerroLB removing the session).
    AdministrativelyDown,
    /// 8
    ReverseConcatenatedPathDown,
    /// A reserved code, 9 to 31: kept so a received packet re-encodes unchanged. Built only
    /// by [`Diag::from_code`]; larger values are truncated to 5 bits when encoded.
    Reserved(u8),
}

impl Diag {
    /// The 5-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            Diag::NoDiagnostic => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(code) => code & 0x1f,
        }
    }

    /// The diagnostic of a 5-bit wire value (the upper bits are ignored).
    pub fn from_code(code: u8) -> Diag {
        match code & 0x1f {
            0 => Diag::NoDiagnostic,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Reserved(other),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::NoDiagnostic => f.write_str("no diagnostic"),
            Diag::ControlDetectionTimeExpired => f.write_str("control detection time expired"),
            Diag::EchoFunctionFailed => f.write_str("echo function failed"),
            Diag::NeighborSignaledSessionDown => f.write_str("neighbor signaled session down"),
            Diag::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diag::PathDown => f.write_str("path down"),
            Diag::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diag::AdministrativelyDown => f.write_str("administratively down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("reverse concatenated path down"),
            Diag::Reserved(code) => write!(f, "reserved diagnostic {}", code & 0x1f),
        }
    }
}

/// A BFD Control packet that passed the codec's reception checks (or that we are about to
/// send). The A and M bits are not fields: a packet with either set does not parse, and we
/// never set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    /// Poll (P): the sender asks for a packet with Final set (a Poll Sequence, §6.5).
    pub poll: bool,
    /// Final (F): the answer to a Poll.
    pub final_: bool,
    /// Control Plane Independent (C): BFD survives a control-plane restart on the sender.
    /// Always false from FerroLB (the speaker process *is* the control plane).
    pub control_plane_independent: bool,
    /// Demand (D): the sender runs Demand mode and asks us to stop periodic packets. Never
    /// set by FerroLB.
    pub demand: bool,
    pub detect_mult: NonZeroU8,
    pub my_discriminator: NonZeroU32,
    /// `None` on the wire is zero: the sender has not learned our discriminator yet (only in
    /// state Down or AdminDown).
    pub your_discriminator: Option<NonZeroU32>,
    /// Desired Min TX Interval, microseconds.
    pub desired_min_tx_us: u32,
    /// Required Min RX Interval, microseconds (zero: send me no periodic packets).
    pub required_min_rx_us: u32,
    /// Required Min Echo RX Interval, microseconds (zero: no Echo packets, FerroLB's value).
    pub required_min_echo_rx_us: u32,
}

impl ControlPacket {
    /// Parses one UDP payload, applying the codec's part of RFC 5880 §6.8.6 in the RFC's
    /// order.
    pub fn parse(bytes: &[u8]) -> Result<ControlPacket, PacketError> {
        let available = bytes.len();
        let Some(&[b0, b1, detect_mult, length]) = bytes.first_chunk::<4>() else {
            return Err(PacketError::Truncated { available });
        };
        let version = b0 >> 5;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let authenticated = b1 & AUTHENTICATION != 0;
        let minimum = if authenticated {
            MIN_AUTHENTICATED_LEN
        } else {
            MANDATORY_LEN as u8
        };
        if length < minimum {
            return Err(PacketError::LengthTooShort { length, minimum });
        }
        if usize::from(length) > available {
            return Err(PacketError::LengthExceedsPayload { length, available });
        }
        // Length >= 24 and <= available, so this holds; checked anyway.
        let Some(m) = bytes.first_chunk::<MANDATORY_LEN>() else {
            return Err(PacketError::Truncated { available });
        };
        let word = |at: usize| -> u32 {
            let mut w = [0u8; 4];
            if let Some(src) = m.get(at..at + 4) {
                w.copy_from_slice(src);
            }
            u32::from_be_bytes(w)
        };
        let Some(detect_mult) = NonZeroU8::new(detect_mult) else {
            return Err(PacketError::DetectMultZero);
        };
        if b1 & MULTIPOINT != 0 {
            return Err(PacketError::Multipoint);
        }
        let Some(my_discriminator) = NonZeroU32::new(word(4)) else {
            return Err(PacketError::MyDiscriminatorZero);
        };
        let state = State::from_code(b1 >> 6);
        let your_discriminator = NonZeroU32::new(word(8));
        if your_discriminator.is_none() && !matches!(state, State::Down | State::AdminDown) {
            return Err(PacketError::YourDiscriminatorZero(state));
        }
        if authenticated {
            let auth_type = bytes.get(MANDATORY_LEN).copied().unwrap_or(0);
            return Err(PacketError::Authentication { auth_type });
        }
        Ok(ControlPacket {
            diag: Diag::from_code(b0),
            state,
            poll: b1 & POLL != 0,
            final_: b1 & FINAL != 0,
            control_plane_independent: b1 & CONTROL_PLANE_INDEPENDENT != 0,
            demand: b1 & DEMAND != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        })
    }

    /// Encodes the mandatory section (version 1, Length 24, A and M clear).
    ///
    /// Encoding does not check the packet: one with `your_discriminator: None` in state Init
    /// or Up, or with both Poll and Final, encodes but breaks RFC 5880 (the first does not
    /// parse). [`Session`](super::session::Session) never builds either.
    pub fn to_bytes(&self) -> [u8; MANDATORY_LEN] {
        let mut flags = self.state.code() << 6;
        for (set, bit) in [
            (self.poll, POLL),
            (self.final_, FINAL),
            (self.control_plane_independent, CONTROL_PLANE_INDEPENDENT),
            (self.demand, DEMAND),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut out = [0u8; MANDATORY_LEN];
        let header = [
            (VERSION << 5) | self.diag.code(),
            flags,
            self.detect_mult.get(),
            MANDATORY_LEN as u8,
        ];
        let words = [
            self.my_discriminator.get(),
            self.your_discriminator.map_or(0, NonZeroU32::get),
            self.desired_min_tx_us,
            self.required_min_rx_us,
            self.required_min_echo_rx_us,
        ];
        let (head, rest) = out.split_at_mut(4);
        head.copy_from_slice(&header);
        for (chunk, word) in rest.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// Why a datagram is not an acceptable BFD Control packet. Every variant is a "MUST be
/// discarded" of RFC 5880 §6.8.6 (or a datagram too short to read); the driver counts and
/// drops, and may log at a low level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer bytes than the first word (or than the mandatory section).
    #[error("BFD packet truncated: {available} bytes, the mandatory section is 24")]
    Truncated { available: usize },

    /// A version other than 1.
    #[error("BFD version {0} is not 1")]
    Version(u8),

    /// Length below 24, or below 26 with the A bit set.
    #[error("BFD Length {length} is below the minimum {minimum}")]
    LengthTooShort { length: u8, minimum: u8 },

    /// Length beyond the datagram.
    #[error("BFD Length {length} exceeds the {available} bytes received")]
    LengthExceedsPayload { length: u8, available: usize },

    /// Detect Mult zero.
    #[error("BFD Detect Mult is zero")]
    DetectMultZero,

    /// The Multipoint bit set (reserved for point-to-multipoint extensions).
    #[error("BFD Multipoint bit is set")]
    Multipoint,

    /// My Discriminator zero.
    #[error("BFD My Discriminator is zero")]
    MyDiscriminatorZero,

    /// Your Discriminator zero in state Init or Up: a sender in those states has learned ours.
    #[error("BFD Your Discriminator is zero in state {0} (allowed only in Down and AdminDown)")]
    YourDiscriminatorZero(State),

    /// The A bit set: FerroLB sessions use no authentication, so RFC 5880 §6.8.6 discards
    /// the packet. The peer is configured with authentication that FerroLB's `BFDProfile`
    /// cannot express.
    #[error(
        "BFD authentication ({}, type {auth_type}) is not supported: configure the peer without BFD authentication",
        auth_type_name(*auth_type)
    )]
    Authentication { auth_type: u8 },
}

/// The name of an Auth Type (RFC 5880 §4.1), for messages.
pub fn auth_type_name(auth_type: u8) -> &'static str {
    match auth_type {
        0 => "reserved",
        1 => "simple password",
        2 => "keyed MD5",
        3 => "meticulous keyed MD5",
        4 => "keyed SHA1",
        5 => "meticulous keyed SHA1",
        _ => "unassigned",
    }
}
