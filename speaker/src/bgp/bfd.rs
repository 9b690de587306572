//! BFD for BGP peers (RFC 5880 asynchronous mode; RFC 5881 single hop, RFC 5883 multi-hop
//! for `ebgpMultiHop` peers): the sockets around the sans-IO
//! [`ferrolb_shared::bfd::session::Session`] that each peer's task runs when its
//! `BGPPeer.bfdProfile` names a profile.
//!
//! ```text
//!  UDP :3784 / :4784 (a socket per family and hop kind, the Hub)
//!        ──TTL check, parse, by source address──▶ peer task's Link
//!  peer task's Link ── its own socket, source port 49152-65535, TTL 255 ──▶ peer :3784 / :4784
//! ```
//!
//! The receive ports are shared by every peer, so one [`Hub`] owns them and hands each packet
//! to the peer it came from (if that peer's session is of the port's hop kind); a port is
//! bound only once a peer asks for it. Each datagram comes with the TTL / Hop Limit it
//! arrived with (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`: the kernel's `IP_MINTTL` filters TCP
//! only), and on the single-hop port anything but 255 is dropped before a session sees it
//! (RFC 5881 §5, [`reception::accept`]); drops are counted in
//! `ferrolb_bfd_packets_discarded_total`. Not done: echo mode, authentication.

use super::conn::Io;
use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_shared::bfd::packet::State;
use ferrolb_shared::bfd::reception::{self, Hops};
use ferrolb_shared::bfd::session::{Action, Input, Session, SessionConfig, TimerKind};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use prometheus::IntCounterVec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Where our source port comes from (RFC 5881 §4, RFC 5883 §4).
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// Sent with TTL 255, single hop so the receiver can tell it came from the link (and
/// multi-hop too: RFC 5883 §5 lets the receiver check a minimum).
const TTL: u32 = reception::REQUIRED_TTL as u32;

/// A peer's BFD, from its `bfdProfile`, `ebgpMultiHop` and AS numbers: the session's timers
/// and what decides whether it is single- or multi-hop ([`reception::hops_for`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub session: SessionConfig,
    pub ebgp_multihop: bool,
    pub ibgp: bool,
    /// The profile's `minimumTtl`, for a multi-hop session.
    pub min_ttl: u8,
}

impl Settings {
    /// Single or multi-hop with `peer`, seen from our address `local`. Only an iBGP peer
    /// needs the node's networks (is it on one we share?), read from its interfaces then.
    fn hops(&self, local: IpAddr, peer: IpAddr) -> Hops {
        let on_link = if self.ibgp && !self.ebgp_multihop {
            on_link(local, peer)
        } else {
            true // not looked at
        };
        reception::hops_for(self.ebgp_multihop, self.ibgp, on_link, self.min_ttl)
    }
}

/// Whether `peer` is on one of this node's networks that also holds `local` (the addresses
/// of its interfaces, from getifaddrs, which asks the kernel of the calling thread's network
/// namespace).
fn on_link(local: IpAddr, peer: IpAddr) -> bool {
    let networks: Vec<ipnet::IpNet> = pnet_datalink::interfaces()
        .iter()
        .flat_map(|i| &i.ips)
        .filter_map(|n| ipnet::IpNet::new(n.ip(), n.prefix()).ok())
        .collect();
    reception::on_link(local, peer, &networks)
}

/// A peer's registration: its number, its session's hop kind, where its packets go.
struct Registered {
    id: u64,
    hops: Hops,
    io: mpsc::UnboundedSender<Io>,
}

/// The shared receive side: ports 3784 and 4784, packets handed out by source address.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<HubInner>>,
    /// `ferrolb_bfd_packets_discarded_total`, by reason.
    discarded: IntCounterVec,
}

#[derive(Default)]
struct HubInner {
    /// By peer address.
    peers: HashMap<IpAddr, Registered>,
    /// Numbers registrations, so a stopping peer task's late drop cannot remove the entry of
    /// the task that replaced it.
    registrations: u64,
    /// The receive task of each family (true: IPv4) and port, once started.
    receivers: HashMap<(bool, u16), AbortOnDrop<()>>,
}

impl Hub {
    /// A hub counting the datagrams it drops in `discarded` (label: reason).
    pub fn new(discarded: IntCounterVec) -> Hub {
        Hub {
            inner: Arc::default(),
            discarded,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Packets from `peer` go to `io` (the peer task's channel) until the [`Registration`]
    /// drops.
    fn register(
        &self,
        peer: IpAddr,
        hops: Hops,
        io: mpsc::UnboundedSender<Io>,
    ) -> std::io::Result<Registration> {
        let v4 = peer.is_ipv4();
        let mut inner = self.lock();
        let port = hops.port();
        if let Entry::Vacant(slot) = inner.receivers.entry((v4, port)) {
            let socket = bind_receive(v4, port)?;
            let peers = self.clone();
            slot.insert(AbortOnDrop(tokio::spawn(peers.receive(socket, port))));
        }
        inner.registrations += 1;
        let id = inner.registrations;
        inner.peers.insert(peer, Registered { id, hops, io });
        Ok(Registration {
            hub: self.clone(),
            peer,
            id,
        })
    }

    /// Receives on `port` until aborted.
    async fn receive(self, socket: UdpSocket, port: u16) {
        let mut buf = [0u8; 512];
        // Room for one `int` control message: IP_TTL and IPV6_HOPLIMIT both carry an int.
        let mut control = nix::cmsg_space!(libc::c_int);
        loop {
            let fd = socket.as_raw_fd();
            let received = socket
                .async_io(tokio::io::Interest::READABLE, || {
                    receive_one(fd, &mut buf, &mut control)
                })
                .await;
            let Ok((n, from, ttl)) = received else {
                continue; // ICMP errors surface here on some kernels; keep receiving
            };
            // The peer first: its session's hop kind says which TTL is acceptable. A packet
            // for a single-hop peer on the multi-hop port would skip the strict check, so
            // each peer's packets count on its own port only.
            let ip = from.ip().to_canonical();
            let Some((hops, io)) = self
                .lock()
                .peers
                .get(&ip)
                .filter(|r| r.hops.port() == port)
                .map(|r| (r.hops, r.io.clone()))
            else {
                self.discarded.with_label_values(&["unknown_peer"]).inc();
                continue;
            };
            match reception::accept(buf.get(..n).unwrap_or_default(), ttl, hops) {
                Ok(packet) => {
                    let _ = io.send(Io::Bfd(packet));
                }
                Err(discard) => {
                    // Both malformed packets (RFC 5880 §6.8.6) and ones from too far away
                    // (RFC 5881 §5, RFC 5883 §5) are dropped without an answer; the counter
                    // says it happens.
                    tracing::debug!(%from, "BFD packet discarded: {discard}");
                    self.discarded.with_label_values(&[discard.reason()]).inc();
                }
            }
        }
    }
}

/// Reads one datagram without blocking: its length, its source and the TTL / Hop Limit it
/// arrived with (`None` if the kernel attached none).
fn receive_one(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, Option<u8>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(control), MsgFlags::MSG_DONTWAIT)?;
    let ttl = msg.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|c| match c {
            ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                u8::try_from(t).ok()
            }
            _ => None,
        })
    });
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4((*v4).into()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
        })
        .ok_or_else(|| std::io::Error::other("BFD datagram without a source address"))?;
    Ok((msg.bytes, from, ttl))
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
        if inner.peers.get(&self.peer).is_some_and(|r| r.id == self.id) {
            inner.peers.remove(&self.peer);
        }
    }
}

fn bind_receive(v4: bool, port: u16) -> std::io::Result<UdpSocket> {
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
    // Each datagram's TTL / Hop Limit as a control message, for RFC 5881's check.
    if v4 {
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)?;
    } else {
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
    }
    socket.bind(&SockAddr::from(SocketAddr::new(any, port)))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// A socket from `local` with a source port in the RFC range, TTL 255, sending to the peer's
/// port for `hops`.
fn bind_send(local: IpAddr, peer: IpAddr, hops: Hops, seed: u64) -> std::io::Result<UdpSocket> {
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
                socket.connect(&SockAddr::from(SocketAddr::new(peer, hops.port())))?;
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
        settings: Settings,
        io: mpsc::UnboundedSender<Io>,
    ) -> std::io::Result<Link> {
        let seed = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), (peer, local));
        let hops = settings.hops(local, peer);
        tracing::info!(?hops, "BFD session starting");
        let socket = bind_send(local, peer, hops, seed)?;
        let registration = hub.register(peer.to_canonical(), hops, io)?;
        // Any non-zero discriminator unique on this node; a random one is, with high odds.
        let discriminator = NonZeroU32::new((seed >> 32) as u32).unwrap_or(NonZeroU32::MIN);
        let mut link = Link {
            session: Session::new(discriminator, settings.session, seed),
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
