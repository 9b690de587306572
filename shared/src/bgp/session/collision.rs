//! Connection collision detection (RFC 4271 §6.8).
//!
//! When both speakers connect at once there are two TCP connections for one peering. On
//! receiving an OPEN on one, if the other is in OpenConfirm (so its OPEN, and the peer's
//! BGP Identifier, is known) or Established, one must go:
//! - against an Established connection, the new one loses;
//! - otherwise compare the identifiers as 32-bit numbers: if ours is lower, the connection
//!   we opened goes (the peer's wins); else the one the peer opened goes.
//!
//! Both speakers apply the same rule to the same two connections, so they keep the same one.
//! The loser gets a Cease / Connection Collision Resolution NOTIFICATION.

use std::net::Ipv4Addr;

/// One side of a collision: which connection and who opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Side {
    /// The peer opened it.
    pub inbound: bool,
    pub established: bool,
}

/// Which connection to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loser {
    /// The connection whose OPEN just arrived.
    New,
    /// The connection that was there first.
    Existing,
}

/// Decides a collision between `new` (whose OPEN just arrived) and `existing`.
pub(super) fn resolve(local_id: Ipv4Addr, peer_id: Ipv4Addr, new: Side, existing: Side) -> Loser {
    if existing.established {
        return Loser::New;
    }
    if new.inbound == existing.inbound {
        // Two connections in the same direction are no collision RFC 4271 describes: the
        // peer retried, so the older one is stale.
        return Loser::Existing;
    }
    // Ours lower: close the connection we opened (the outbound one).
    let close_inbound = u32::from(local_id) > u32::from(peer_id);
    if new.inbound == close_inbound {
        Loser::New
    } else {
        Loser::Existing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn side(inbound: bool) -> Side {
        Side {
            inbound,
            established: false,
        }
    }

    #[test]
    fn higher_id_keeps_its_outbound_connection() {
        // We are higher: the peer's (inbound) connection goes.
        assert_eq!(resolve(HIGH, LOW, side(true), side(false)), Loser::New);
        assert_eq!(resolve(HIGH, LOW, side(false), side(true)), Loser::Existing);
        // We are lower: our (outbound) connection goes.
        assert_eq!(resolve(LOW, HIGH, side(true), side(false)), Loser::Existing);
        assert_eq!(resolve(LOW, HIGH, side(false), side(true)), Loser::New);
    }

    #[test]
    fn established_wins() {
        let est = Side {
            inbound: false,
            established: true,
        };
        assert_eq!(resolve(LOW, HIGH, side(true), est), Loser::New);
    }
}
