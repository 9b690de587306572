//! Datagram framing and authentication: `[version][HMAC-SHA256 tag][payload]`.
//!
//! * `version` is one byte, [`VERSION`]. Anything else is dropped as malformed, so a future
//!   format can be rolled out next to this one without being misread.
//! * The tag is the full 32-byte HMAC-SHA256 of the payload under a key derived from the
//!   shared secret and the version: `K = HMAC-SHA256(secret, "ferrolb-gossip-v1")`. Deriving
//!   the key binds the version byte into every tag (a v1 tag never verifies as another
//!   version) and keeps the secret itself out of the hot path, separated from any other use
//!   of the same secret.
//! * Verification is `ring::hmac::verify`, which compares in constant time.
//!
//! There is no replay protection: someone on the LAN can resend a captured datagram. SWIM's
//! state ordering (incarnations, `Down` being final for an identity, identities renewed on
//! rejoin) makes a replay repeat stale news that members already discard; it cannot forge a
//! new identity or a newer incarnation.

use ring::hmac;

/// The framing version this code writes and accepts.
pub const VERSION: u8 = 1;
/// Length of the tag after the version byte (full HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// Bytes the framing adds in front of the payload.
pub const OVERHEAD: usize = 1 + TAG_LEN;
/// The shortest secret [`Auth::secret`] accepts.
pub const MIN_SECRET_LEN: usize = 16;

/// Label mixed into the key derivation (with the version).
const KEY_LABEL: &[u8] = b"ferrolb-gossip-v1";

/// How datagrams are authenticated. Build it with [`Auth::secret`].
#[derive(Clone)]
pub struct Auth {
    key: hmac::Key,
    insecure: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let kind = if self.insecure { "insecure" } else { "secret" };
        f.debug_struct("Auth").field("kind", &kind).finish()
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes (the length is given).
    #[error("the gossip secret is {0} bytes long; at least {MIN_SECRET_LEN} are required")]
    TooShort(usize),
}

/// What [`Auth::open`] found wrong with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Empty, or a version byte other than [`VERSION`].
    Malformed,
    /// Too short to hold a tag, or the tag does not verify.
    BadAuth,
}

impl Auth {
    /// Authenticate with a shared secret (every speaker of the cluster uses the same one).
    pub fn secret(secret: &[u8]) -> Result<Auth, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::TooShort(secret.len()));
        }
        Ok(Auth::derive(secret, false))
    }

    /// **For tests only.** Tags are computed with a publicly known (empty) secret: they catch
    /// corruption but authenticate nothing. A speaker with a real secret drops these
    /// datagrams as `bad_auth`, and the other way round.
    pub fn insecure() -> Auth {
        Auth::derive(&[], true)
    }

    /// Whether this is [`Auth::insecure`].
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    fn derive(secret: &[u8], insecure: bool) -> Auth {
        let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&master, KEY_LABEL);
        Auth {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            insecure,
        }
    }

    /// Frame `payload` for the wire.
    pub fn seal(&self, payload: &[u8]) -> Vec<u8> {
        let tag = hmac::sign(&self.key, payload);
        let mut out = Vec::with_capacity(OVERHEAD + payload.len());
        out.push(VERSION);
        out.extend_from_slice(tag.as_ref());
        out.extend_from_slice(payload);
        out
    }

    /// Check a datagram's version and tag, and return its payload.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], Rejected> {
        let Some((&version, rest)) = datagram.split_first() else {
            return Err(Rejected::Malformed);
        };
        if version != VERSION {
            return Err(Rejected::Malformed);
        }
        if rest.len() < TAG_LEN {
            return Err(Rejected::BadAuth);
        }
        let (tag, payload) = rest.split_at(TAG_LEN);
        hmac::verify(&self.key, payload, tag).map_err(|_| Rejected::BadAuth)?;
        Ok(payload)
    }
}
