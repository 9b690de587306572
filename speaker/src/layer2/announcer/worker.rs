//! One interface's packet socket, its receive thread, and its solicited-node memberships.
//!
//! The socket is made with socket2 as `AF_PACKET`/`SOCK_RAW` with protocol 0, which
//! receives nothing yet; the [filter](super::filter) is attached; then pnet binds it to the
//! interface with `ETH_P_ALL` (`pnet_datalink::channel` with `Config::socket_fd`), and only
//! from that bind on does the kernel queue frames, all of them already filtered and all from
//! this interface. (Creating it with `ETH_P_ALL` instead would queue frames from every
//! interface, unfiltered, between `socket` and `bind`, and a receive loop cannot tell them
//! apart: pnet does not return the source interface.)
//!
//! The receive thread is a plain std thread, so a request flood costs that thread and never
//! the async runtime. Per frame it does a bounded amount of work: parse (checked, no
//! allocation unless it answers), one lookup under the state's read lock, one token bucket,
//! at most one send. The read guard is held from the lookup until the send returns, so
//! once `set_owned` has swapped the state (write lock) no reply for a released address can
//! still be on its way.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_shared::l2::packet::{
    Answer, ArpOperation, Frame, MacAddr, Message, answer, parse_frame, solicited_node_multicast,
};
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use socket2::{Domain, Protocol, Socket, Type};

use super::bucket::RateLimiter;
use super::state::{IpStats, OwnedState};
use super::{GlobalStats, Shared, filter};
use crate::layer2::interfaces::Interface;

/// How long a receive waits before checking for shutdown: the bound on how long stopping a
/// worker takes.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// A send that cannot go out within this is dropped (and counted).
const WRITE_TIMEOUT: Duration = Duration::from_millis(50);
/// Enough for any ARP or NDP frame with options; larger frames are cut and then rejected by
/// the codec as truncated.
const READ_BUFFER: usize = 2048;

/// A running receive loop on one interface, and the means to send there.
pub(super) struct Worker {
    pub name: String,
    pub index: u32,
    pub mac: MacAddr,
    sender: Arc<Mutex<Box<dyn DataLinkSender>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub memberships: Memberships,
}

impl Worker {
    /// Opens the filtered packet socket on `iface` and starts its receive thread.
    pub fn start(iface: &Interface, shared: Arc<Shared>, rate_per_source: u32) -> io::Result<Self> {
        // Protocol 0: no frames until pnet's bind names the interface and ETH_P_ALL.
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))?;
        socket.attach_filter(&filter::program())?;
        let pnet_iface = NetworkInterface {
            name: iface.name.clone(),
            description: String::new(),
            index: iface.index,
            mac: Some(iface.mac.octets().into()),
            ips: Vec::new(),
            flags: 0,
        };
        let config = pnet_datalink::Config {
            read_buffer_size: READ_BUFFER,
            write_buffer_size: READ_BUFFER,
            read_timeout: Some(READ_TIMEOUT),
            write_timeout: Some(WRITE_TIMEOUT),
            // The codec answers broadcast, multicast and our own MAC; there is nothing to
            // gain from other hosts' unicast.
            promiscuous: false,
            // pnet takes ownership: it binds the socket and closes it when both halves drop.
            socket_fd: Some(socket.into_raw_fd()),
            ..pnet_datalink::Config::default()
        };
        let (tx, rx) = match pnet_datalink::channel(&pnet_iface, config)? {
            Channel::Ethernet(tx, rx) => (tx, rx),
            _ => {
                return Err(io::Error::other("pnet returned a non-Ethernet channel"));
            }
        };
        let sender = Arc::new(Mutex::new(tx));
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = Receiver {
            name: iface.name.clone(),
            mac: iface.mac,
            rx,
            sender: sender.clone(),
            shared,
            stop: stop.clone(),
            limiter: RateLimiter::new(rate_per_source),
        };
        let thread = std::thread::Builder::new()
            .name(format!("l2-rx-{}", iface.name))
            .spawn(move || receiver.run())?;
        Ok(Worker {
            name: iface.name.clone(),
            index: iface.index,
            mac: iface.mac,
            sender,
            stop,
            thread: Some(thread),
            memberships: Memberships::new(iface.index),
        })
    }

    /// Sends one frame out of this interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        send(&self.sender, frame)
    }

    /// Asks the receive thread to stop (it notices within [`READ_TIMEOUT`]).
    pub fn signal_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the receive thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the receive thread and waits for it.
    pub fn join(mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(interface = %self.name, "layer 2 receive thread panicked");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn send(sender: &Mutex<Box<dyn DataLinkSender>>, frame: &[u8]) -> io::Result<()> {
    let mut tx = sender.lock().unwrap_or_else(PoisonError::into_inner);
    tx.send_to(frame, None)
        .unwrap_or_else(|| Err(io::Error::other("frame larger than the write buffer")))
}

/// The receive thread's state.
struct Receiver {
    name: String,
    mac: MacAddr,
    rx: Box<dyn DataLinkReceiver>,
    sender: Arc<Mutex<Box<dyn DataLinkSender>>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    limiter: RateLimiter,
}

impl Receiver {
    fn run(mut self) {
        let span = tracing::debug_span!("l2_receive", interface = %self.name);
        let _enter = span.enter();
        let mut last_error: Option<io::ErrorKind> = None;
        while !self.stop.load(Ordering::Relaxed) {
            match self.rx.next() {
                Ok(bytes) => {
                    last_error = None;
                    let frame = match parse_frame(bytes) {
                        Ok(frame) => frame,
                        Err(error) if error.is_not_for_us() => continue,
                        Err(error) => {
                            GlobalStats::bump(&self.shared.global.malformed);
                            tracing::debug!(%error, "dropped a malformed ARP/NDP frame");
                            continue;
                        }
                    };
                    self.handle(&frame);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => {
                    // E.g. ENETDOWN once when the interface goes away. Say it once per
                    // kind and do not spin.
                    if last_error != Some(error.kind()) {
                        tracing::warn!(%error, "packet socket receive failed");
                        last_error = Some(error.kind());
                    }
                    std::thread::sleep(READ_TIMEOUT);
                }
            }
        }
    }

    fn handle(&mut self, frame: &Frame) {
        if !self.shared.lease.valid(Instant::now()) {
            GlobalStats::bump(&self.shared.global.lease_expired);
            return;
        }
        let state = self.shared.read_state();
        let Some((reply, stats)) = respond(
            frame,
            &self.name,
            self.mac,
            &state,
            &mut self.limiter,
            &self.shared.global,
            Instant::now(),
        ) else {
            return;
        };
        // Still under the read guard: see the module comment.
        match send(&self.sender, &reply) {
            Ok(()) => IpStats::bump(&stats.replies),
            Err(error) => {
                GlobalStats::bump(&self.shared.global.send_errors);
                tracing::debug!(%error, "sending a reply failed");
            }
        }
        drop(state);
    }
}

/// Decides the reply to a parsed frame received on `interface` (pure apart from counters and
/// the rate limiter): only requests for an address owned on this interface right now, with
/// carrier, get one, and at most at the requester's rate.
pub(super) fn respond<'s>(
    frame: &Frame,
    interface: &str,
    mac: MacAddr,
    state: &'s OwnedState,
    limiter: &mut RateLimiter,
    global: &GlobalStats,
    now: Instant,
) -> Option<(Vec<u8>, &'s IpStats)> {
    let target = match frame.message {
        Message::Arp(arp) if arp.operation == ArpOperation::Request => IpAddr::V4(arp.target_ip),
        Message::NeighborSolicitation(ns) => IpAddr::V6(ns.target),
        _ => return None,
    };
    let (stats, answering) = state.lookup(interface, target)?;
    match answer(frame, mac, |ip| answering && ip == target) {
        Answer::Reply(reply) => {
            IpStats::bump(&stats.requests);
            if !limiter.allow(frame.source, now) {
                IpStats::bump(&stats.rate_limited);
                GlobalStats::bump(&global.rate_limited);
                return None;
            }
            Some((reply, stats))
        }
        Answer::NotOurs => {
            // Owned here, but fenced (no carrier) or sent to another host's MAC.
            IpStats::bump(&stats.requests);
            None
        }
        Answer::NotAQuestion | Answer::FromUs => None,
    }
}

/// The solicited-node multicast groups joined on one interface for its owned IPv6 addresses.
///
/// Joining through an IPv6 UDP socket (`IPV6_ADD_MEMBERSHIP`) makes the kernel program the
/// NIC's multicast filter with the group's 33:33:ff:xx:xx:xx MAC and send MLD reports, so the
/// NIC accepts solicitations for the address and MLD-snooping switches forward them to us.
/// One socket per interface holds every group; the kernel drops them all when it closes.
pub(super) struct Memberships {
    index: u32,
    socket: Option<Socket>,
    joined: BTreeSet<Ipv6Addr>,
}

impl Memberships {
    fn new(index: u32) -> Self {
        Memberships {
            index,
            socket: None,
            joined: BTreeSet::new(),
        }
    }

    /// Joins the groups of `owned` not joined yet and leaves those no owned address needs.
    /// A failed join (IPv6 disabled on the interface, say) is logged and retried on the next
    /// update.
    pub fn update(&mut self, interface: &str, owned: &BTreeSet<Ipv6Addr>) {
        let (join, leave) = group_changes(&self.joined, owned);
        if join.is_empty() && leave.is_empty() {
            return;
        }
        let socket = match &self.socket {
            Some(socket) => socket,
            None => match Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)) {
                Ok(socket) => self.socket.insert(socket),
                Err(error) => {
                    tracing::warn!(%interface, %error, "cannot open a socket for multicast joins");
                    return;
                }
            },
        };
        for group in leave {
            if let Err(error) = socket.leave_multicast_v6(&group, self.index) {
                tracing::debug!(%interface, %group, %error, "leaving a solicited-node group");
            }
            self.joined.remove(&group);
        }
        for group in join {
            match socket.join_multicast_v6(&group, self.index) {
                Ok(()) => {
                    self.joined.insert(group);
                }
                Err(error) => tracing::warn!(
                    %interface, %group, %error,
                    "cannot join a solicited-node multicast group; solicitations for it may not arrive"
                ),
            }
        }
    }
}

/// The groups to join and to leave so that exactly the solicited-node groups of `owned` are
/// joined. Addresses sharing their low 24 bits share a group, joined once.
pub(super) fn group_changes(
    joined: &BTreeSet<Ipv6Addr>,
    owned: &BTreeSet<Ipv6Addr>,
) -> (Vec<Ipv6Addr>, Vec<Ipv6Addr>) {
    let wanted: BTreeSet<Ipv6Addr> = owned
        .iter()
        .map(|ip| solicited_node_multicast(*ip))
        .collect();
    let join = wanted.difference(joined).copied().collect();
    let leave = joined.difference(&wanted).copied().collect();
    (join, leave)
}
