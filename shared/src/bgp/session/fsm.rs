//! Message and timer processing per connection (RFC 4271 §8.2.2, the OpenSent, OpenConfirm
//! and Established columns): stream framing, OPEN checks and negotiation, the
//! OpenConfirm → Established step with the initial table, and the RFC 6608 FSM errors for
//! messages that come in the wrong state.

use std::time::{Duration, Instant};

use super::super::codec::notification::{cease, code, fsm_error, open_error};
use super::super::codec::{
    AS_TRANS, Afi, Capability, CodecOptions, Message, Notification, Open, Safi, decode, encode,
};
use super::collision::{self, Loser, Side};
use super::rib_out::end_of_rib;
use super::timers::keepalive_interval;
use super::{Action, ConnId, ConnState, DownReason, Negotiated, Session, TimerKind, family_set};

/// The most bytes buffered for one connection: one maximal message and a partial one.
const MAX_BUFFER: usize = 2 * super::super::codec::MAX_MESSAGE_LEN;

impl Session {
    pub(super) fn on_bytes(
        &mut self,
        now: Instant,
        id: ConnId,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        conn.buf.extend_from_slice(bytes);
        loop {
            // By id each time: collision resolution may remove the other connection.
            let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
                return;
            };
            let opts = conn
                .negotiated
                .as_ref()
                .map(Negotiated::codec)
                .unwrap_or_default();
            match decode(&conn.buf, &opts) {
                Ok(None) => {
                    if conn.buf.len() > MAX_BUFFER {
                        // Cannot happen with a sound decoder; never buffer without bound.
                        self.notify_and_drop(id, Notification::cease(cease::OUT_OF_RESOURCES), out);
                        self.after_failure(now, out);
                    }
                    return;
                }
                Ok(Some((message, len))) => {
                    conn.buf.drain(..len.min(conn.buf.len()));
                    if !self.on_message(now, id, message, out) {
                        self.after_failure(now, out);
                        return;
                    }
                }
                Err(e) => {
                    let established = conn.state == ConnState::Established;
                    match e.message_len {
                        Some(len) if e.treat_as_withdraw && established => {
                            conn.buf.drain(..len.min(conn.buf.len()));
                            self.counters.updates_received += 1;
                            self.counters.updates_treated_as_withdraw += 1;
                            self.restart_hold(now, id, out);
                        }
                        _ => {
                            self.notify_and_drop(id, e.notification, out);
                            self.after_failure(now, out);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Handles one message; false if the connection was dropped.
    fn on_message(
        &mut self,
        now: Instant,
        id: ConnId,
        message: Message,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(state) = self
            .conn_index(id)
            .and_then(|i| self.conns.get(i))
            .map(|c| c.state)
        else {
            return false;
        };
        if let Message::Notification(n) = message {
            self.counters.notifications_received += 1;
            self.drop_conn(id, DownReason::NotificationReceived(n), out);
            return false;
        }
        let unexpected = |s: ConnState| match s {
            ConnState::OpenSent => fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_SENT,
            ConnState::OpenConfirm => fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM,
            ConnState::Established => fsm_error::UNEXPECTED_MESSAGE_IN_ESTABLISHED,
        };
        match (state, message) {
            (ConnState::OpenSent, Message::Open(open)) => self.on_open(now, id, &open, out),
            (ConnState::OpenConfirm, Message::Keepalive) => {
                self.counters.keepalives_received += 1;
                self.restart_hold(now, id, out);
                self.become_established(id, out);
                true
            }
            (ConnState::Established, Message::Keepalive) => {
                self.counters.keepalives_received += 1;
                self.restart_hold(now, id, out);
                true
            }
            (ConnState::Established, Message::Update(update)) => {
                self.counters.updates_received += 1;
                self.counters.prefixes_received += update.nlri.len() as u64;
                self.restart_hold(now, id, out);
                true
            }
            (ConnState::Established, Message::RouteRefresh { afi, safi, subtype }) => {
                self.counters.route_refreshes_received += 1;
                self.restart_hold(now, id, out);
                if subtype == 0 {
                    self.on_route_refresh(id, afi, safi, out);
                }
                true
            }
            (s, _) => {
                self.notify_and_drop(id, Notification::fsm(unexpected(s)), out);
                false
            }
        }
    }

    /// Checks the peer's OPEN, resolves collisions, and moves to OpenConfirm.
    fn on_open(&mut self, now: Instant, id: ConnId, open: &Open, out: &mut Vec<Action>) -> bool {
        if let Err(n) = self.check_open(open) {
            self.notify_and_drop(id, n, out);
            return false;
        }
        // Collision detection against the other connection, if it knows the peer's id.
        let other = self
            .conns
            .iter()
            .find(|c| c.id != id && c.state != ConnState::OpenSent)
            .map(|c| {
                (
                    c.id,
                    Side {
                        inbound: c.inbound,
                        established: c.state == ConnState::Established,
                    },
                )
            });
        let new_inbound = self
            .conn_index(id)
            .and_then(|i| self.conns.get(i))
            .is_some_and(|c| c.inbound);
        if let Some((other_id, existing)) = other {
            let new = Side {
                inbound: new_inbound,
                established: false,
            };
            let collision = Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION);
            match collision::resolve(self.config.router_id, open.router_id, new, existing) {
                Loser::New => {
                    self.notify_and_drop(id, collision, out);
                    return false;
                }
                Loser::Existing => self.notify_and_drop(other_id, collision, out),
            }
        }

        let negotiated = self.negotiate(open);
        let opts = negotiated.codec();
        let hold = negotiated.hold_time;
        let keepalive = negotiated.keepalive_time;
        if let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) {
            conn.state = ConnState::OpenConfirm;
            conn.negotiated = Some(negotiated);
        }
        self.counters.keepalives_sent += 1;
        out.push(Action::Send(id, encode(&Message::Keepalive, &opts)));
        if hold.is_zero() {
            out.push(Action::Cancel(TimerKind::Hold(id)));
        } else {
            out.push(Action::Schedule {
                timer: TimerKind::Hold(id),
                at: now + hold,
            });
            out.push(Action::Schedule {
                timer: TimerKind::Keepalive(id),
                at: now + keepalive,
            });
        }
        true
    }

    /// The OPEN checks RFC 4271 §6.2 leaves to the session (the codec did the rest).
    fn check_open(&self, open: &Open) -> Result<(), Notification> {
        let bad_as =
            || Notification::new(code::OPEN_MESSAGE_ERROR, open_error::BAD_PEER_AS, vec![]);
        if let super::PeerAs::Fixed(want) = self.config.peer_as
            && open.my_as != want
        {
            return Err(bad_as());
        }
        if self.config.require_four_octet_as && open.four_octet_as().is_none() {
            // RFC 5492 §5: the data lists the capabilities we miss.
            let mut data = vec![65, 4];
            data.extend_from_slice(&self.config.local_as.to_be_bytes());
            return Err(Notification::new(
                code::OPEN_MESSAGE_ERROR,
                open_error::UNSUPPORTED_CAPABILITY,
                data,
            ));
        }
        // A 2-octet speaker with a 4-octet AS would have to send AS_TRANS, which no peer
        // can really have.
        if open.four_octet_as().is_none() && open.my_as == u32::from(AS_TRANS) {
            return Err(bad_as());
        }
        if open.router_id == self.config.router_id && self.config.is_ibgp(open.my_as) {
            // RFC 6286 §2.2: identifiers must differ within an AS.
            return Err(Notification::new(
                code::OPEN_MESSAGE_ERROR,
                open_error::BAD_BGP_IDENTIFIER,
                vec![],
            ));
        }
        Ok(())
    }

    /// What our configuration and the peer's OPEN settle.
    fn negotiate(&self, open: &Open) -> Negotiated {
        let ours = Duration::from_secs(self.config.hold_time.as_secs());
        let hold = ours.min(Duration::from_secs(open.hold_time.into()));
        let peer_families: Vec<(Afi, Safi)> = open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::MultiProtocol { afi, safi } => Some((*afi, *safi)),
                _ => None,
            })
            .collect();
        let peer_families = if peer_families.is_empty() {
            // RFC 4760 §8: without the capability, IPv4 unicast only.
            family_set(&[(Afi::IPV4, Safi::UNICAST)])
        } else {
            family_set(&peer_families)
        };
        let families = self
            .config
            .families
            .iter()
            .copied()
            .filter(|f| peer_families.contains(f))
            .collect();
        let has = |want: fn(&Capability) -> bool| open.capabilities.iter().any(want);
        let peer_gr = has(|c| matches!(c, Capability::GracefulRestart { .. }));
        Negotiated {
            peer_as: open.my_as,
            peer_router_id: open.router_id,
            hold_time: hold,
            keepalive_time: keepalive_interval(hold, self.config.keepalive_time),
            four_octet_as: open.four_octet_as().is_some(),
            families,
            route_refresh: self.config.route_refresh
                && has(|c| matches!(c, Capability::RouteRefresh)),
            peer_graceful_restart: peer_gr,
            graceful_restart: peer_gr && self.config.graceful_restart.is_some(),
        }
    }

    /// Our OPEN.
    pub(super) fn make_open(&self) -> Open {
        let mut capabilities: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|(afi, safi)| Capability::MultiProtocol {
                afi: *afi,
                safi: *safi,
            })
            .collect();
        if self.config.route_refresh {
            capabilities.push(Capability::RouteRefresh);
        }
        if let Some(gr) = self.config.graceful_restart {
            capabilities.push(Capability::GracefulRestart {
                restart_state: self.restarting,
                notification: false,
                restart_time: gr.restart_time.min(0x0fff),
                families: self
                    .config
                    .families
                    .iter()
                    // F: forwarding for our routes survived, always true here. The routes
                    // lead to the node's data path (nftables, the userspace proxy, or
                    // kube-proxy), which neither a session flap nor a speaker restart touches;
                    // with F clear a router holding our routes as stale drops them at our OPEN
                    // instead of at our End-of-RIB (RFC 4724 §4.2), and traffic stops for the
                    // time it takes to re-advertise them.
                    .map(|(afi, safi)| (*afi, *safi, true))
                    .collect(),
            });
        }
        capabilities.push(Capability::FourOctetAs(self.config.local_as));
        Open {
            version: 4,
            my_as: self.config.local_as,
            hold_time: u16::try_from(self.config.hold_time.as_secs()).unwrap_or(u16::MAX),
            router_id: self.config.router_id,
            capabilities,
        }
    }

    /// OpenConfirm → Established: report it and send the table, then End-of-RIB per family.
    fn become_established(&mut self, id: ConnId, out: &mut Vec<Action>) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        conn.state = ConnState::Established;
        let Some(neg) = conn.negotiated.clone() else {
            return;
        };
        // The other connection, if any, is still in OpenSent: collision resolution would
        // close it when its OPEN comes; close it now.
        let others: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.id != id)
            .map(|c| c.id)
            .collect();
        for other in others {
            self.notify_and_drop(
                other,
                Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION),
                out,
            );
        }
        self.restarting = false;
        self.backoff.reset();
        self.counters.established_transitions += 1;
        out.push(Action::Established);
        self.rib.reset_sent();
        self.sync_rib(out);
        let eor = end_of_rib(&neg.families, &neg.codec());
        self.send_updates(id, eor, out);
    }

    /// A ROUTE-REFRESH request: send the family's routes again.
    fn on_route_refresh(&mut self, id: ConnId, afi: Afi, safi: Safi, out: &mut Vec<Action>) {
        let Some(neg) = self.negotiated().cloned() else {
            return;
        };
        if !neg.route_refresh || !neg.families.contains(&(afi, safi)) {
            return;
        }
        let result = self.rib.refresh(afi, safi, &neg.codec());
        self.send_packed(id, result, out);
    }

    /// Something arrived: the peer is alive.
    fn restart_hold(&mut self, now: Instant, id: ConnId, out: &mut Vec<Action>) {
        let hold = self
            .conns
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.negotiated.as_ref())
            .map(|n| n.hold_time);
        if let Some(hold) = hold.filter(|h| !h.is_zero()) {
            out.push(Action::Schedule {
                timer: TimerKind::Hold(id),
                at: now + hold,
            });
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant, timer: TimerKind, out: &mut Vec<Action>) {
        match timer {
            TimerKind::ConnectRetry => {
                if self.running && self.conns.is_empty() && !self.config.passive {
                    self.connect(now, out);
                }
            }
            TimerKind::Hold(id) => {
                if self.conn_index(id).is_some() {
                    self.notify_and_drop(id, Notification::hold_timer_expired(), out);
                    self.after_failure(now, out);
                }
            }
            TimerKind::Keepalive(id) => {
                let Some(conn) = self.conns.iter().find(|c| c.id == id) else {
                    return;
                };
                let Some(neg) = conn.negotiated.as_ref() else {
                    return;
                };
                if neg.keepalive_time.is_zero() {
                    return;
                }
                let at = now + neg.keepalive_time;
                let bytes = encode(&Message::Keepalive, &CodecOptions::default());
                self.counters.keepalives_sent += 1;
                out.push(Action::Send(id, bytes));
                out.push(Action::Schedule {
                    timer: TimerKind::Keepalive(id),
                    at,
                });
            }
        }
    }
}
