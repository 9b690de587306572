//! Decoding errors, each carrying the NOTIFICATION that answers it (RFC 4271 §6, with the
//! revised UPDATE error handling of RFC 7606).

use std::net::Ipv4Addr;

use super::notification::{
    Notification, code, header_error, open_error, route_refresh_error, update_error,
};

/// A message that must not be accepted, and what to tell the peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (answer: NOTIFICATION {code}/{subcode})", code = .notification.code, subcode = .notification.subcode)]
pub struct DecodeError {
    /// What was wrong, with the offending value.
    pub kind: ErrorKind,
    /// The NOTIFICATION RFC 4271 §6 prescribes, data included.
    pub notification: Notification,
    /// The length of the offending message when its header was sound and the whole message
    /// was in the buffer, so a caller that keeps the session (see `treat_as_withdraw`) can
    /// skip exactly this message. `None` when the stream itself is out of step (bad marker,
    /// length or type): the session must be closed.
    pub message_len: Option<usize>,
    /// RFC 7606: the UPDATE's attributes are malformed but its prefixes could still be
    /// located, so the session may stay up with this UPDATE's routes treated as withdrawn
    /// instead of sending `notification`. Always false outside UPDATE messages and for
    /// errors that leave the NLRI unknown (framing, MP_REACH_NLRI/MP_UNREACH_NLRI, NLRI).
    pub treat_as_withdraw: bool,
}

/// What was wrong with a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The 16-byte marker is not all ones.
    #[error("the header marker is not all ones")]
    BadMarker,
    /// The header's Length is outside 19..=4096 or wrong for the message type.
    #[error("message length {length} is invalid for message type {message_type}")]
    BadLength { length: u16, message_type: u8 },
    /// The header's Type is not one we know.
    #[error("unknown message type {0}")]
    BadType(u8),
    /// A ROUTE-REFRESH of subtype 1 or 2 (RFC 7313) whose length is not 23.
    #[error("ROUTE-REFRESH of length {0} (subtype BoRR/EoRR must be 23)")]
    BadRouteRefreshLength(u16),

    /// OPEN with a version other than 4.
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    /// OPEN with AS 0 (RFC 7607), in the header field or the 4-octet AS capability.
    #[error("bad peer AS {0}")]
    BadPeerAs(u32),
    /// OPEN with BGP Identifier 0.0.0.0 (RFC 6286).
    #[error("bad BGP identifier {0}")]
    BadBgpIdentifier(Ipv4Addr),
    /// OPEN with a hold time of 1 or 2 seconds.
    #[error("unacceptable hold time {0} s")]
    UnacceptableHoldTime(u16),
    /// OPEN with an optional parameter other than Capabilities.
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    /// OPEN whose optional parameters do not fill the message exactly.
    #[error("malformed OPEN: {0}")]
    MalformedOpen(&'static str),
    /// A capability we know whose value has the wrong length.
    #[error("capability {code} has a malformed value of {length} bytes")]
    MalformedCapability { code: u8, length: usize },

    /// The Withdrawn Routes Length runs past the message.
    #[error("withdrawn routes length {length} exceeds the {available} bytes left")]
    WithdrawnOverrun { length: usize, available: usize },
    /// The Total Path Attribute Length runs past the message.
    #[error("total path attribute length {length} exceeds the {available} bytes left")]
    AttributesOverrun { length: usize, available: usize },
    /// A path attribute's header or length runs past the attribute list.
    #[error("path attribute {code} of length {length} exceeds the {available} bytes left")]
    AttributeOverrun {
        code: u8,
        length: usize,
        available: usize,
    },
    /// MP_REACH_NLRI or MP_UNREACH_NLRI appears twice (RFC 7606 §3g).
    #[error("path attribute {0} appears more than once")]
    DuplicateAttribute(u8),
    /// A prefix in the Withdrawn Routes field is malformed.
    #[error("withdrawn routes: {0}")]
    BadWithdrawn(PrefixProblem),
    /// A prefix in the NLRI field is malformed.
    #[error("NLRI: {0}")]
    BadNlri(PrefixProblem),
    /// A path attribute marked well-known whose type we do not know.
    #[error("unrecognized well-known path attribute {0}")]
    UnrecognizedWellKnown(u8),
    /// ORIGIN, AS_PATH or (with IPv4 NLRI) NEXT_HOP is missing from an UPDATE that
    /// announces routes.
    #[error("missing well-known path attribute {0}")]
    MissingWellKnown(u8),
    /// The Optional/Transitive/Partial flags contradict the attribute's type.
    #[error("path attribute {code} has flags {flags:#04x}")]
    AttributeFlags { code: u8, flags: u8 },
    /// A known attribute whose length is wrong for its type.
    #[error("path attribute {code} has invalid length {length}")]
    AttributeLength { code: u8, length: usize },
    /// ORIGIN is not 0, 1 or 2.
    #[error("invalid ORIGIN {0}")]
    InvalidOrigin(u8),
    /// NEXT_HOP is not a unicast host address.
    #[error("invalid NEXT_HOP {0}")]
    InvalidNextHop(Ipv4Addr),
    /// AS_PATH segments do not parse.
    #[error("malformed AS_PATH: {0}")]
    MalformedAsPath(&'static str),
    /// MP_REACH_NLRI / MP_UNREACH_NLRI does not parse.
    #[error("malformed path attribute {code}: {problem}")]
    MalformedMpAttribute { code: u8, problem: MpProblem },
}

/// What is wrong with a prefix in an NLRI-style list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixProblem {
    #[error("prefix length {0} is longer than the address")]
    TooLong(u8),
    #[error("a /{0} prefix runs past the end of the list")]
    Truncated(u8),
}

/// What is wrong with an MP_REACH_NLRI or MP_UNREACH_NLRI attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MpProblem {
    #[error("shorter than its fixed fields")]
    Truncated,
    #[error("IPv6 next hop of {0} bytes (must be 16 or 32)")]
    NextHopLength(u8),
    #[error("{0}")]
    Prefix(PrefixProblem),
}

impl From<super::wire::PrefixError> for PrefixProblem {
    fn from(e: super::wire::PrefixError) -> Self {
        match e {
            super::wire::PrefixError::TooLong(bits) => PrefixProblem::TooLong(bits),
            super::wire::PrefixError::Truncated(bits) => PrefixProblem::Truncated(bits),
        }
    }
}

impl DecodeError {
    /// An error about the header: the stream is out of step.
    pub(super) fn header(kind: ErrorKind) -> Self {
        let notification = match &kind {
            ErrorKind::BadMarker => Notification::new(
                code::MESSAGE_HEADER_ERROR,
                header_error::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ),
            ErrorKind::BadType(t) => Notification::new(
                code::MESSAGE_HEADER_ERROR,
                header_error::BAD_MESSAGE_TYPE,
                vec![*t],
            ),
            ErrorKind::BadLength { length, .. } => Notification::new(
                code::MESSAGE_HEADER_ERROR,
                header_error::BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
            ),
            _ => Notification::new(code::MESSAGE_HEADER_ERROR, 0, Vec::new()),
        };
        DecodeError {
            kind,
            notification,
            message_len: None,
            treat_as_withdraw: false,
        }
    }

    /// A ROUTE-REFRESH BoRR/EoRR of the wrong length: RFC 7313 wants the whole message back.
    pub(super) fn route_refresh_length(length: u16, message: &[u8]) -> Self {
        DecodeError {
            kind: ErrorKind::BadRouteRefreshLength(length),
            notification: Notification::new(
                code::ROUTE_REFRESH_MESSAGE_ERROR,
                route_refresh_error::INVALID_MESSAGE_LENGTH,
                message.to_vec(),
            ),
            message_len: None,
            treat_as_withdraw: false,
        }
    }

    /// An error in an OPEN body.
    pub(super) fn open(kind: ErrorKind) -> Self {
        let (subcode, data) = match &kind {
            ErrorKind::UnsupportedVersion(_) => {
                (open_error::UNSUPPORTED_VERSION_NUMBER, vec![0, 4])
            }
            ErrorKind::BadPeerAs(_) => (open_error::BAD_PEER_AS, Vec::new()),
            ErrorKind::BadBgpIdentifier(_) => (open_error::BAD_BGP_IDENTIFIER, Vec::new()),
            ErrorKind::UnacceptableHoldTime(_) => (open_error::UNACCEPTABLE_HOLD_TIME, Vec::new()),
            ErrorKind::UnsupportedOptionalParameter(_) => {
                (open_error::UNSUPPORTED_OPTIONAL_PARAMETER, Vec::new())
            }
            _ => (open_error::UNSPECIFIC, Vec::new()),
        };
        DecodeError {
            kind,
            notification: Notification::new(code::OPEN_MESSAGE_ERROR, subcode, data),
            message_len: None,
            treat_as_withdraw: false,
        }
    }

    /// An error in an UPDATE body. `data` is what RFC 4271 puts in the NOTIFICATION (usually
    /// the offending attribute); `treat_as_withdraw` follows RFC 7606 §7.
    pub(super) fn update(kind: ErrorKind, data: Vec<u8>, treat_as_withdraw: bool) -> Self {
        let subcode = match &kind {
            ErrorKind::UnrecognizedWellKnown(_) => update_error::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
            ErrorKind::MissingWellKnown(_) => update_error::MISSING_WELL_KNOWN_ATTRIBUTE,
            ErrorKind::AttributeFlags { .. } => update_error::ATTRIBUTE_FLAGS_ERROR,
            ErrorKind::AttributeLength { .. } => update_error::ATTRIBUTE_LENGTH_ERROR,
            ErrorKind::InvalidOrigin(_) => update_error::INVALID_ORIGIN_ATTRIBUTE,
            ErrorKind::InvalidNextHop(_) => update_error::INVALID_NEXT_HOP_ATTRIBUTE,
            ErrorKind::MalformedMpAttribute { .. } => update_error::OPTIONAL_ATTRIBUTE_ERROR,
            ErrorKind::BadNlri(_) => update_error::INVALID_NETWORK_FIELD,
            ErrorKind::MalformedAsPath(_) => update_error::MALFORMED_AS_PATH,
            _ => update_error::MALFORMED_ATTRIBUTE_LIST,
        };
        DecodeError {
            kind,
            notification: Notification::new(code::UPDATE_MESSAGE_ERROR, subcode, data),
            message_len: None,
            treat_as_withdraw,
        }
    }
}
