//! BFD for BGP peers (RFC 5880 asynchronous mode, RFC 5881 single hop): the sockets around
//! the sans-IO [`ferrolb_shared::bfd::session::Session`] that each peer's task runs when its
//! `BGPPeer.bfdProfile` names a profile.
//!
//! ```text
//!  UDP :3784 (one socket per family, the Hub) ──parse, by source address──▶ peer task's Link
//!  peer task's Link ── its own socket, source port 49152-65535, TTL 255 ──▶ peer :3784
//! ```
//!
//! The receive port is shared by every peer, so one [`Hub`] owns it and hands each packet to
//! the peer it came from; it is bound only once a peer asks for BFD. Not done: the GTSM
//! check of the received TTL (RFC 5881 §5; it needs `IP_RECVTTL` ancillary data), echo mode,
//! authentication.

use super::conn::Io;
use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_shared::bfd::packet::{ControlPacket, State};
use ferrolb_shared::bfd::session::{Action, Input, Session, SessionConfig, TimerKind};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The single-hop control port (RFC 5881 §4).
pub const BFD_PORT: u16 = 3784;
/// Where our source port comes from (RFC 5881 §4).
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// Single hop: sent with TTL 255 so the receiver can tell it came from the link.
const TTL: u32 = 255;

/// By peer address: the registration's number and where its packets go.
type Peers = HashMap<IpAddr, (u64, mpsc::UnboundedSender<Io>)>;

/// The shared receive side: port 3784, packets handed out by source address.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HubInner>>,
}

#[derive(Default)]
struct HubInner {
    peers: Peers,
    /// Numbers registrations, so a stopping peer task's late drop cannot remove the entry of
    /// the task that replaced it.
    registrations: u64,
    /// The receive task of each family, once started.
    receivers: HashMap<bool, AbortOnDrop<()>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Packets from `peer` go to `io` (the peer task's channel) until the [`Registration`]
    /// drops.
    fn register(
        &self,
        peer: IpAddr,
        io: mpsc::UnboundedSender<Io>,
    ) -> std::io::Result<Registration> {
        let v4 = peer.is_ipv4();
        let mut inner = self.lock();
        if let Entry::Vacant(slot) = inner.receivers.entry(v4) {
            let socket = bind_receive(v4)?;
            let peers = self.clone();
            slot.insert(AbortOnDrop(tokio::spawn(peers.receive(socket))));
        }
        inner.registrations += 1;
        let id = inner.registrations;
        inner.peers.insert(peer, (id, io));
        Ok(Registration {
            hub: self.clone(),
            peer,
            id,
        })
    }

    async fn receive(self, socket: UdpSocket) {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue; // ICMP errors surface here on some kernels; keep receiving
            };
            let Ok(packet) = ControlPacket::parse(buf.get(..n).unwrap_or_default()) else {
                continue; // malformed: RFC 5880 §6.8.6 says discard
            };
            let ip = from.ip().to_canonical();
            if let Some((_, tx)) = self.lock().peers.get(&ip) {
                let _ = tx.send(Io::Bfd(packet));
            }
        }
    }
}

/// Keeps a peer's packets coming; unregisters on drop.
pub struct Registration {
    hub: Hub,
    peer: IpAddr,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        if inner
            .peers
            .get(&self.peer)
            .is_some_and(|(id, _)| *id == self.id)
        {
            inner.peers.remove(&self.peer);
        }
    }
}

fn bind_receive(v4: bool) -> std::io::Result<UdpSocket> {
    let (domain, any) = if v4 {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    } else {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if !v4 {
        socket.set_only_v6(true)?; // the IPv4 socket takes IPv4
    }
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(SocketAddr::new(any, BFD_PORT)))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// A socket from `local` with a source port in the RFC range, TTL 255, sending to the peer.
fn bind_send(local: IpAddr, peer: IpAddr, seed: u64) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(SocketAddr::new(local, 0)),
        Type::DGRAM,
        None,
    )?;
    if local.is_ipv4() {
        socket.set_ttl_v4(TTL)?;
    } else {
        socket.set_unicast_hops_v6(TTL)?;
    }
    let span = u64::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut last = std::io::Error::other("no free source port");
    // A few tries from a random start: ports in use by other sessions are skipped.
    for i in 0..64 {
        let offset = u16::try_from((seed.wrapping_add(i)) % span).unwrap_or(0);
        let port = SOURCE_PORTS.start().saturating_add(offset);
        match socket.bind(&SockAddr::from(SocketAddr::new(local, port))) {
            Ok(()) => {
                socket.connect(&SockAddr::from(SocketAddr::new(peer, BFD_PORT)))?;
                socket.set_nonblocking(true)?;
                return UdpSocket::from_std(socket.into());
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One peer's BFD session with its sockets and timers.
pub struct Link {
    session: Session,
    socket: UdpSocket,
    timers: HashMap<TimerKind, Instant>,
    _registration: Registration,
}

impl Link {
    /// Starts BFD with `peer` from our address `local`; its packets arrive on `io`.
    pub fn start(
        hub: &Hub,
        peer: IpAddr,
        local: IpAddr,
        config: SessionConfig,
        io: mpsc::UnboundedSender<Io>,
    ) -> std::io::Result<Link> {
        let seed = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), (peer, local));
        let socket = bind_send(local, peer, seed)?;
        let registration = hub.register(peer.to_canonical(), io)?;
        // Any non-zero discriminator unique on this node; a random one is, with high odds.
        let discriminator = NonZeroU32::new((seed >> 32) as u32).unwrap_or(NonZeroU32::MIN);
        let mut link = Link {
            session: Session::new(discriminator, config, seed),
            socket,
            timers: HashMap::new(),
            _registration: registration,
        };
        link.handle(Input::Start);
        Ok(link)
    }

    pub fn is_up(&self) -> bool {
        self.session.state() == State::Up
    }

    /// The earliest timer.
    pub fn deadline(&self) -> Option<Instant> {
        self.timers.values().min().copied()
    }

    /// Feeds the due timers; true if the session went down from Up.
    pub fn fire_timers(&mut self) -> bool {
        let mut down = false;
        for timer in super::take_due(&mut self.timers) {
            down |= self.handle(Input::Timer(timer));
        }
        down
    }

    /// Feeds one input; true if the session went down from Up.
    pub fn handle(&mut self, input: Input) -> bool {
        let mut down = false;
        for action in self.session.handle(Instant::now(), input) {
            match action {
                Action::Send(packet) => {
                    // UDP: a full send buffer drops the packet, as the network might.
                    let _ = self.socket.try_send(&packet.to_bytes());
                }
                Action::Schedule { timer, at } => {
                    self.timers.insert(timer, at);
                }
                Action::Cancel(timer) => {
                    self.timers.remove(&timer);
                }
                Action::StateChanged { from, to, diag } => {
                    tracing::info!(?from, ?to, ?diag, "BFD state changed");
                    down |= from == State::Up && to != State::Up;
                }
            }
        }
        down
    }
}
