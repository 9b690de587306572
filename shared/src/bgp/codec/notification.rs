//! The NOTIFICATION message (RFC 4271 §4.5) and the registered error codes and subcodes.

use std::fmt;

/// A NOTIFICATION: an error code, a subcode and diagnostic data. Sending one closes the
/// session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Notification {
    /// One of the [`code`] constants.
    pub code: u8,
    /// A subcode whose meaning depends on `code` ([`header_error`], [`open_error`],
    /// [`update_error`], [`fsm_error`], [`cease`], [`route_refresh_error`]); 0 means
    /// "unspecific".
    pub subcode: u8,
    /// Diagnostic data, defined per code/subcode (e.g. the bad length for
    /// [`header_error::BAD_MESSAGE_LENGTH`], the offending attribute for most UPDATE errors).
    pub data: Vec<u8>,
}

/// Error codes (RFC 4271 §4.5, RFC 7313 for ROUTE-REFRESH).
pub mod code {
    pub const MESSAGE_HEADER_ERROR: u8 = 1;
    pub const OPEN_MESSAGE_ERROR: u8 = 2;
    pub const UPDATE_MESSAGE_ERROR: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM_ERROR: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;
}

/// Subcodes of [`code::MESSAGE_HEADER_ERROR`] (RFC 4271 §6.1).
pub mod header_error {
    /// The marker is not all ones.
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    /// Data: the erroneous Length field (2 octets).
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    /// Data: the erroneous Type field (1 octet).
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of [`code::OPEN_MESSAGE_ERROR`] (RFC 4271 §6.2, RFC 5492, RFC 9234).
pub mod open_error {
    pub const UNSPECIFIC: u8 = 0;
    /// Data: the largest version we support (2 octets, `00 04`).
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// Data: the capabilities we require but the peer did not offer (RFC 5492).
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// Subcodes of [`code::UPDATE_MESSAGE_ERROR`] (RFC 4271 §6.3).
pub mod update_error {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// Data: the attribute (flags, type, length, value).
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    /// Data: the type code of the missing attribute (1 octet).
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    /// Data: the attribute.
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    /// Data: the attribute.
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    /// Data: the attribute.
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    /// Data: the attribute.
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    /// Data: the attribute.
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of [`code::FSM_ERROR`] (RFC 6608).
pub mod fsm_error {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_MESSAGE_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_MESSAGE_IN_ESTABLISHED: u8 = 3;
}

/// Subcodes of [`code::CEASE`] (RFC 4486, RFC 8538, RFC 9384).
pub mod cease {
    /// Data: AFI (2), SAFI (1), prefix limit (4).
    pub const MAXIMUM_PREFIXES_REACHED: u8 = 1;
    /// Data: an optional shutdown communication (RFC 9003).
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Data: an optional shutdown communication (RFC 9003).
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// Graceful restart does not retain routes after this one (RFC 8538).
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;
}

/// Subcodes of [`code::ROUTE_REFRESH_MESSAGE_ERROR`] (RFC 7313).
pub mod route_refresh_error {
    /// Data: the complete ROUTE-REFRESH message.
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// The longest shutdown communication RFC 9003 allows, in bytes of UTF-8.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// Cease with `subcode` and no data.
    pub fn cease(subcode: u8) -> Self {
        Notification::new(code::CEASE, subcode, Vec::new())
    }

    /// Cease / Administrative Shutdown carrying `communication` (RFC 9003: a length octet and
    /// UTF-8, cut at a character boundary to 255 bytes). An empty text sends no data.
    pub fn administrative_shutdown(communication: &str) -> Self {
        let mut end = communication.len().min(MAX_SHUTDOWN_COMMUNICATION);
        while !communication.is_char_boundary(end) {
            end -= 1;
        }
        let text = communication.get(..end).unwrap_or_default();
        let mut data = Vec::with_capacity(text.len() + 1);
        if !text.is_empty() {
            data.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
            data.extend_from_slice(text.as_bytes());
        }
        Notification::new(code::CEASE, cease::ADMINISTRATIVE_SHUTDOWN, data)
    }

    pub fn hold_timer_expired() -> Self {
        Notification::new(code::HOLD_TIMER_EXPIRED, 0, Vec::new())
    }

    /// A Finite State Machine Error with one of the [`fsm_error`] subcodes.
    pub fn fsm(subcode: u8) -> Self {
        Notification::new(code::FSM_ERROR, subcode, Vec::new())
    }

    /// The shutdown communication of a Cease / Administrative Shutdown or Reset (RFC 9003),
    /// if it carries a well-formed one.
    pub fn shutdown_communication(&self) -> Option<&str> {
        if self.code != code::CEASE
            || !matches!(
                self.subcode,
                cease::ADMINISTRATIVE_SHUTDOWN | cease::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        std::str::from_utf8(text).ok().filter(|t| !t.is_empty())
    }

    /// The registered name of the error code.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            code::MESSAGE_HEADER_ERROR => "Message Header Error",
            code::OPEN_MESSAGE_ERROR => "OPEN Message Error",
            code::UPDATE_MESSAGE_ERROR => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM_ERROR => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH_MESSAGE_ERROR => "ROUTE-REFRESH Message Error",
            _ => "unknown error code",
        }
    }

    /// The registered name of the subcode, if it has one.
    pub fn subcode_name(&self) -> Option<&'static str> {
        let name = match (self.code, self.subcode) {
            (code::MESSAGE_HEADER_ERROR, 1) => "Connection Not Synchronized",
            (code::MESSAGE_HEADER_ERROR, 2) => "Bad Message Length",
            (code::MESSAGE_HEADER_ERROR, 3) => "Bad Message Type",
            (code::OPEN_MESSAGE_ERROR, 1) => "Unsupported Version Number",
            (code::OPEN_MESSAGE_ERROR, 2) => "Bad Peer AS",
            (code::OPEN_MESSAGE_ERROR, 3) => "Bad BGP Identifier",
            (code::OPEN_MESSAGE_ERROR, 4) => "Unsupported Optional Parameter",
            (code::OPEN_MESSAGE_ERROR, 6) => "Unacceptable Hold Time",
            (code::OPEN_MESSAGE_ERROR, 7) => "Unsupported Capability",
            (code::OPEN_MESSAGE_ERROR, 11) => "Role Mismatch",
            (code::UPDATE_MESSAGE_ERROR, 1) => "Malformed Attribute List",
            (code::UPDATE_MESSAGE_ERROR, 2) => "Unrecognized Well-known Attribute",
            (code::UPDATE_MESSAGE_ERROR, 3) => "Missing Well-known Attribute",
            (code::UPDATE_MESSAGE_ERROR, 4) => "Attribute Flags Error",
            (code::UPDATE_MESSAGE_ERROR, 5) => "Attribute Length Error",
            (code::UPDATE_MESSAGE_ERROR, 6) => "Invalid ORIGIN Attribute",
            (code::UPDATE_MESSAGE_ERROR, 8) => "Invalid NEXT_HOP Attribute",
            (code::UPDATE_MESSAGE_ERROR, 9) => "Optional Attribute Error",
            (code::UPDATE_MESSAGE_ERROR, 10) => "Invalid Network Field",
            (code::UPDATE_MESSAGE_ERROR, 11) => "Malformed AS_PATH",
            (code::FSM_ERROR, 1) => "Receive Unexpected Message in OpenSent State",
            (code::FSM_ERROR, 2) => "Receive Unexpected Message in OpenConfirm State",
            (code::FSM_ERROR, 3) => "Receive Unexpected Message in Established State",
            (code::CEASE, 1) => "Maximum Number of Prefixes Reached",
            (code::CEASE, 2) => "Administrative Shutdown",
            (code::CEASE, 3) => "Peer De-configured",
            (code::CEASE, 4) => "Administrative Reset",
            (code::CEASE, 5) => "Connection Rejected",
            (code::CEASE, 6) => "Other Configuration Change",
            (code::CEASE, 7) => "Connection Collision Resolution",
            (code::CEASE, 8) => "Out of Resources",
            (code::CEASE, 9) => "Hard Reset",
            (code::CEASE, 10) => "BFD Down",
            (code::ROUTE_REFRESH_MESSAGE_ERROR, 1) => "Invalid Message Length",
            _ => return None,
        };
        Some(name)
    }

    /// The body after the header: code, subcode, data.
    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }

    /// Decodes a body of at least 2 bytes (the framing checked that).
    pub(super) fn decode_body(body: &[u8]) -> Self {
        match body {
            [code, subcode, data @ ..] => Notification::new(*code, *subcode, data.to_vec()),
            _ => Notification::default(),
        }
    }
}

/// `Cease / Administrative Shutdown (6/2): "maintenance"`, or the numbers and the data in
/// hex for anything without a name or text.
impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code_name())?;
        if let Some(sub) = self.subcode_name() {
            write!(f, " / {sub}")?;
        }
        write!(f, " ({}/{})", self.code, self.subcode)?;
        if let Some(text) = self.shutdown_communication() {
            write!(f, ": {text:?}")?;
        } else if !self.data.is_empty() {
            write!(f, ", data ")?;
            for b in &self.data {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}
