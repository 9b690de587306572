//! The configuration of one peering, its defaults and its checks.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::super::codec::{Afi, Safi};

/// The hold time proposed in OPEN when none is configured (RFC 4271 suggests 90 s).
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
/// The hold timer while waiting for the peer's OPEN (RFC 4271 §8: "large", 4 minutes).
pub const LARGE_HOLD_TIME: Duration = Duration::from_secs(240);
/// The first reconnect delay by default.
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);
/// The longest reconnect delay the backoff reaches by default.
pub const DEFAULT_MAX_CONNECT_RETRY: Duration = Duration::from_secs(120);

/// The AS the peer must open with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAs {
    /// Exactly this AS (`BGPPeer.peerASN`).
    Fixed(u32),
    /// Whatever AS the peer opens with (`BGPPeer.dynamicASN`).
    Dynamic,
}

/// Graceful restart (RFC 4724) as the restarting speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// Seconds the peer should keep our routes while we restart (12 bits: capped at 4095).
    pub restart_time: u16,
}

/// How one peering behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub peer_as: PeerAs,
    /// Our BGP Identifier (non-zero).
    pub router_id: Ipv4Addr,
    /// Proposed hold time: zero (no keepalives) or at least 3 s; whole seconds are sent.
    pub hold_time: Duration,
    /// Keepalive interval; `None` is a third of the negotiated hold time.
    pub keepalive_time: Option<Duration>,
    /// The first reconnect delay; it doubles on each consecutive failure.
    pub connect_retry: Duration,
    /// The cap of the reconnect backoff.
    pub max_connect_retry: Duration,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    /// Families to negotiate (multiprotocol capability).
    pub families: Vec<(Afi, Safi)>,
    /// Advertise graceful restart.
    pub graceful_restart: Option<GracefulRestart>,
    /// This process restarted (sets the R bit in the OPENs sent until Established).
    pub restarting: bool,
    /// Advertise the route refresh capability (and answer ROUTE-REFRESH).
    pub route_refresh: bool,
    /// Refuse peers without the 4-octet AS capability (OPEN error 2/7).
    pub require_four_octet_as: bool,
}

impl SessionConfig {
    /// A config with the defaults: hold 90 s, keepalive hold/3, retry 5 s backing off to
    /// 120 s, active, IPv4 and IPv6 unicast, route refresh, no graceful restart, 2-octet AS
    /// peers accepted.
    pub fn new(local_as: u32, peer_as: PeerAs, router_id: Ipv4Addr) -> Self {
        SessionConfig {
            local_as,
            peer_as,
            router_id,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive_time: None,
            connect_retry: DEFAULT_CONNECT_RETRY,
            max_connect_retry: DEFAULT_MAX_CONNECT_RETRY,
            passive: false,
            families: vec![(Afi::IPV4, Safi::UNICAST), (Afi::IPV6, Safi::UNICAST)],
            graceful_restart: None,
            restarting: false,
            route_refresh: true,
            require_four_octet_as: false,
        }
    }

    /// Checks what would break the protocol.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == 0 {
            return Err(ConfigError::ZeroAs);
        }
        if self.peer_as == PeerAs::Fixed(0) {
            return Err(ConfigError::ZeroAs);
        }
        if self.router_id.is_unspecified() {
            return Err(ConfigError::ZeroRouterId);
        }
        let hold = self.hold_time.as_secs();
        if hold != 0 && hold < 3 || hold > u64::from(u16::MAX) {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if self.connect_retry.is_zero() {
            return Err(ConfigError::ZeroConnectRetry);
        }
        Ok(())
    }

    pub(super) fn is_ibgp(&self, peer_as: u32) -> bool {
        self.local_as == peer_as
    }
}

/// A [`SessionConfig`] that cannot drive a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("AS number 0 is reserved")]
    ZeroAs,
    #[error("router id 0.0.0.0 is invalid")]
    ZeroRouterId,
    #[error("hold time {0:?} must be 0 or between 3 s and 65535 s")]
    HoldTime(Duration),
    #[error("connect retry time is zero")]
    ZeroConnectRetry,
}
