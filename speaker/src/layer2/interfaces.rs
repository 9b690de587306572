//! Which interfaces layer 2 mode can announce on, and whether each has carrier.
//!
//! Both come from one rtnetlink link dump (`RTM_GETLINK`), read with a plain socket2
//! `AF_NETLINK` socket and parsed here. Why not `pnet_datalink::interfaces()` plus
//! `/sys/class/net`: getifaddrs has neither the bond/bridge master nor the operstate, and
//! sysfs shows the network namespace that *mounted* it, not the one the calling thread is in
//! (a speaker thread that entered a namespace with `setns`, as the namespace tests do, would
//! read the host's interfaces). A netlink socket always speaks for the namespace it was created
//! in, and one dump gives flags, MAC, master, operstate and carrier consistently.
//!
//! The [`CarrierWatcher`] dumps again whenever the kernel announces a link change: it has a
//! socket in the `RTMGRP_LINK` multicast group (bound with nix's `NetlinkAddr`, which socket2
//! cannot express without `unsafe`). A notification only says "something changed"; the dump
//! is what is read, so a lost notification (the kernel reports `ENOBUFS`) triggers a dump as
//! well, and one runs every [`CARRIER_RESYNC`] regardless. Before, the watcher polled a dump
//! every 20 ms: up to 20 ms late, and half a percent of a core on an idle node.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_shared::l2::election::Interfaces;
use ferrolb_shared::l2::packet::MacAddr;
use ferrolb_shared::netlink::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, attributes, messages,
    push_message, u16_at, u32_at,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

/// How often the [`CarrierWatcher`] dumps the links without being told of a change.
pub const CARRIER_RESYNC: Duration = Duration::from_secs(1);
/// How long the watcher's thread waits for a notification before looking at its stop flag.
const WATCH_WAKE: Duration = Duration::from_millis(100);
/// The most queued notifications read before one dump (more are answered by the next).
const DRAIN_MAX: usize = 1024;
/// `RTMGRP_LINK` (linux/rtnetlink.h): link notifications.
const RTMGRP_LINK: u32 = 0x1;

// Interface flags (linux/if.h).
const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_POINTOPOINT: u32 = 0x10;
const IFF_RUNNING: u32 = 0x40;
const IFF_NOARP: u32 = 0x80;
const IFF_LOWER_UP: u32 = 0x1_0000;
/// `ARPHRD_ETHER`: the only link type our frame codec speaks.
const ARPHRD_ETHER: u16 = 1;
// RFC 2863 operational states, as in IFLA_OPERSTATE.
const OPER_UNKNOWN: u8 = 0;
const OPER_UP: u8 = 6;

/// A link as the kernel describes it in an `RTM_NEWLINK` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `ARPHRD_*` (1 is Ethernet).
    pub link_type: u16,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The hardware address, when it is a 6-byte MAC.
    pub mac: Option<MacAddr>,
    /// The index of the bond or bridge this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_OPERSTATE`.
    pub operstate: Option<u8>,
    /// `IFLA_CARRIER`.
    pub carrier: Option<bool>,
}

impl Link {
    /// Administratively up, carrier present and operationally up (or a driver that does not
    /// report operstate, such as dummy). Falls back to `IFF_LOWER_UP`/`IFF_RUNNING` when the
    /// attributes are absent.
    pub fn has_carrier(&self) -> bool {
        let carrier = self.carrier.unwrap_or(self.flags & IFF_LOWER_UP != 0);
        let oper_up = match self.operstate {
            Some(state) => state == OPER_UP || state == OPER_UNKNOWN,
            None => self.flags & IFF_RUNNING != 0,
        };
        self.flags & IFF_UP != 0 && carrier && oper_up
    }

    /// Whether layer 2 mode can announce on this link: its MAC if so, why not otherwise.
    /// Carrier is not part of it (a link without carrier is fenced, not unusable).
    pub fn usability(&self) -> Result<MacAddr, Unusable> {
        if self.flags & IFF_LOOPBACK != 0 {
            return Err(Unusable::Loopback);
        }
        if self.flags & IFF_UP == 0 {
            return Err(Unusable::Down);
        }
        if self.flags & IFF_POINTOPOINT != 0 {
            return Err(Unusable::PointToPoint);
        }
        if self.flags & IFF_NOARP != 0 {
            return Err(Unusable::NoArp);
        }
        if self.flags & IFF_BROADCAST == 0 {
            return Err(Unusable::NoBroadcast);
        }
        if self.link_type != ARPHRD_ETHER {
            return Err(Unusable::NotEthernet(self.link_type));
        }
        if let Some(master) = self.master {
            return Err(Unusable::Enslaved { master });
        }
        match self.mac {
            Some(mac) if mac != MacAddr::ZERO && !mac.is_multicast() => Ok(mac),
            _ => Err(Unusable::NoMac),
        }
    }
}

/// Why an interface cannot carry layer 2 announcements.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// No interface has that name.
    #[error("no such interface")]
    NotFound,
    /// Administratively down (`IFF_UP` clear).
    #[error("interface is down")]
    Down,
    #[error("loopback interface")]
    Loopback,
    /// Point-to-point links (tunnels, WireGuard) have no neighbors to answer.
    #[error("point-to-point interface")]
    PointToPoint,
    /// `IFF_NOARP`: the link does not do neighbor resolution.
    #[error("interface has NOARP set")]
    NoArp,
    #[error("interface is not broadcast-capable")]
    NoBroadcast,
    /// A link type other than Ethernet (InfiniBand, IP-over-something...).
    #[error("link type {0} is not Ethernet (1)")]
    NotEthernet(u16),
    /// A bond or bridge member: the master answers for the segment, so announce there.
    #[error("interface is enslaved to interface index {master} (bond or bridge member)")]
    Enslaved { master: u32 },
    #[error("interface has no usable MAC address")]
    NoMac,
}

/// An interface layer 2 mode can announce on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: MacAddr,
    /// Carrier at the time of the dump (see [`Link::has_carrier`]).
    pub carrier: bool,
}

/// The outcome of [`select`]: usable interfaces, and the named ones that are not, with why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub usable: Vec<Interface>,
    /// Only interfaces asked for by name; with [`Interfaces::All`] unusable links (loopback,
    /// tunnels, bridge ports) are simply not candidates.
    pub unusable: Vec<(String, Unusable)>,
}

/// Dumps the links of the calling thread's network namespace and selects from them.
pub fn select(selection: &Interfaces) -> Result<Selection, LinkDumpError> {
    Ok(select_from(&links()?, selection))
}

/// [`select`] over a given list of links (pure).
pub fn select_from(links: &[Link], selection: &Interfaces) -> Selection {
    let mut out = Selection::default();
    let keep = |link: &Link, out: &mut Selection| match link.usability() {
        Ok(mac) => out.usable.push(Interface {
            name: link.name.clone(),
            index: link.index,
            mac,
            carrier: link.has_carrier(),
        }),
        Err(why) => out.unusable.push((link.name.clone(), why)),
    };
    match selection {
        Interfaces::All => {
            for link in links {
                if link.usability().is_ok() {
                    keep(link, &mut out);
                }
            }
        }
        Interfaces::Named(names) => {
            for name in names {
                match links.iter().find(|l| &l.name == name) {
                    Some(link) => keep(link, &mut out),
                    None => out.unusable.push((name.clone(), Unusable::NotFound)),
                }
            }
        }
    }
    out
}

/// Why the link dump failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkDumpError {
    /// Creating, writing or reading the rtnetlink socket failed.
    #[error("rtnetlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel answered the dump request with an error.
    #[error("the kernel refused the link dump: {0}")]
    Kernel(io::Error),
    /// A message that does not parse (a kernel bug, or a protocol we misread).
    #[error("malformed rtnetlink message: {0}")]
    Malformed(&'static str),
    /// The dump kept changing under us (`NLM_F_DUMP_INTR`) on every attempt.
    #[error("the link dump was interrupted by concurrent changes {0} times")]
    Interrupted(u32),
}

/// All links of the calling thread's network namespace (one `RTM_GETLINK` dump).
pub fn links() -> Result<Vec<Link>, LinkDumpError> {
    LinkDumper::new()?.dump()
}

const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const IFINFOMSG_LEN: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_CARRIER: u16 = 33;
/// Larger than any dump chunk: the kernel caps them near 32 KiB.
const RECV_BUFFER: usize = 64 * 1024;
const DUMP_ATTEMPTS: u32 = 3;

/// A reusable rtnetlink socket for link dumps.
struct LinkDumper {
    socket: Socket,
    buffer: Vec<u8>,
    seq: u32,
}

impl LinkDumper {
    fn new() -> io::Result<Self> {
        let socket = Socket::new(
            Domain::from(AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(NETLINK_ROUTE)),
        )?;
        // A kernel that never finishes the dump must not hang the caller.
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(LinkDumper {
            socket,
            buffer: vec![0; RECV_BUFFER],
            seq: 0,
        })
    }

    fn dump(&mut self) -> Result<Vec<Link>, LinkDumpError> {
        for _ in 0..DUMP_ATTEMPTS {
            if let Some(links) = self.dump_once()? {
                return Ok(links);
            }
        }
        Err(LinkDumpError::Interrupted(DUMP_ATTEMPTS))
    }

    /// `None` when the dump was interrupted by a concurrent change.
    fn dump_once(&mut self) -> Result<Option<Vec<Link>>, LinkDumpError> {
        self.seq = self.seq.wrapping_add(1);
        // Unbound and unconnected: the kernel autobinds us and `send` goes to the kernel.
        self.socket.send(&dump_request(self.seq))?;
        let mut links = Vec::new();
        let mut interrupted = false;
        loop {
            let len = (&self.socket).read(&mut self.buffer)?;
            let datagram = self.buffer.get(..len).unwrap_or_default();
            match parse_datagram(datagram, self.seq, &mut links)? {
                Progress::More { interrupted: i } => interrupted |= i,
                Progress::Done { interrupted: i } => {
                    return Ok((!(interrupted || i)).then_some(links));
                }
            }
        }
    }
}

/// `RTM_GETLINK` with `NLM_F_DUMP`: every link, with an empty `ifinfomsg`.
fn dump_request(seq: u32) -> Vec<u8> {
    let mut out = Vec::new();
    push_message(
        &mut out,
        RTM_GETLINK,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        &[0; IFINFOMSG_LEN],
    );
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Progress {
    More { interrupted: bool },
    Done { interrupted: bool },
}

/// Parses one datagram of a dump answer, appending links. Messages of another sequence
/// number (left over from an earlier, timed-out dump) are skipped.
fn parse_datagram(
    datagram: &[u8],
    seq: u32,
    links: &mut Vec<Link>,
) -> Result<Progress, LinkDumpError> {
    let mut interrupted = false;
    for message in messages(datagram) {
        let message = message.map_err(LinkDumpError::Malformed)?;
        if message.seq != seq {
            continue;
        }
        interrupted |= message.flags & NLM_F_DUMP_INTR != 0;
        match message.kind {
            NLMSG_DONE => return Ok(Progress::Done { interrupted }),
            NLMSG_ERROR => match message.error_code() {
                Some(0) => {} // an acknowledgement
                Some(code) => {
                    let errno = code.saturating_neg();
                    return Err(LinkDumpError::Kernel(io::Error::from_raw_os_error(errno)));
                }
                None => return Err(LinkDumpError::Malformed("short netlink error")),
            },
            RTM_NEWLINK => links.push(parse_link(message.body)?),
            _ => {} // NLMSG_NOOP and anything else
        }
    }
    Ok(Progress::More { interrupted })
}

/// Parses an `ifinfomsg` and the attributes we use.
fn parse_link(body: &[u8]) -> Result<Link, LinkDumpError> {
    let malformed = LinkDumpError::Malformed;
    if body.len() < IFINFOMSG_LEN {
        return Err(malformed("short ifinfomsg"));
    }
    let mut link = Link {
        link_type: u16_at(body, 2).ok_or(malformed("short ifinfomsg"))?,
        index: u32_at(body, 4).ok_or(malformed("short ifinfomsg"))?,
        flags: u32_at(body, 8).ok_or(malformed("short ifinfomsg"))?,
        name: String::new(),
        mac: None,
        master: None,
        operstate: None,
        carrier: None,
    };
    for attribute in attributes(&body[IFINFOMSG_LEN..]) {
        let (kind, value) = attribute.map_err(malformed)?;
        match kind {
            IFLA_IFNAME => {
                let name = value.split(|b| *b == 0).next().unwrap_or_default();
                link.name = String::from_utf8_lossy(name).into_owned();
            }
            IFLA_ADDRESS => {
                link.mac = <[u8; 6]>::try_from(value).ok().map(MacAddr);
            }
            IFLA_MASTER => link.master = u32_at(value, 0).filter(|m| *m != 0),
            IFLA_OPERSTATE => link.operstate = value.first().copied(),
            IFLA_CARRIER => link.carrier = value.first().map(|c| *c != 0),
            _ => {}
        }
    }
    if link.name.is_empty() {
        return Err(malformed("link without IFLA_IFNAME"));
    }
    Ok(link)
}

/// Publishes the carrier state of every link (name → [`Link::has_carrier`]) on a watch
/// channel, dumping the links on its own thread (in the network namespace of the thread that
/// spawned it) whenever the kernel announces a link change, and every resync period. Stops
/// when dropped or when every receiver is gone.
pub struct CarrierWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Carrier per interface name.
pub type CarrierMap = BTreeMap<String, bool>;

impl CarrierWatcher {
    /// Subscribes, then dumps once (so the first value is real, no change between the two is
    /// missed, and a broken netlink setup is an error here); afterwards dumps on every link
    /// notification and every `resync` ([`CARRIER_RESYNC`] is the default).
    pub fn spawn(resync: Duration) -> Result<(Self, watch::Receiver<CarrierMap>), LinkDumpError> {
        let mut events = LinkEvents::subscribe()?;
        let mut dumper = LinkDumper::new()?;
        let (tx, rx) = watch::channel(carrier_map(&dumper.dump()?));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("l2-carrier".into())
            .spawn(move || {
                // Log a failing dump once per distinct failure run, not every try.
                let mut failures = 0u32;
                let mut dumped = Instant::now();
                while !stopping.load(Ordering::Relaxed) && !tx.is_closed() {
                    if !events.wait() && dumped.elapsed() < resync {
                        continue;
                    }
                    dumped = Instant::now();
                    match dumper.dump() {
                        Ok(links) => {
                            failures = 0;
                            let map = carrier_map(&links);
                            tx.send_if_modified(|current| {
                                let changed = *current != map;
                                if changed {
                                    *current = map;
                                }
                                changed
                            });
                        }
                        Err(error) => {
                            failures = failures.saturating_add(1);
                            if failures == 1 {
                                tracing::warn!(%error, "link dump failed; carrier state is stale");
                            }
                        }
                    }
                }
            })
            .map_err(LinkDumpError::Io)?;
        Ok((
            CarrierWatcher {
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }

    /// Stops the watching thread and waits for it (at most one wake-up and one dump).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CarrierWatcher {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A socket in the link notification group of the calling thread's network namespace.
struct LinkEvents {
    socket: OwnedFd,
    buffer: Vec<u8>,
}

impl LinkEvents {
    fn subscribe() -> io::Result<Self> {
        use nix::sys::socket::{self as sock, AddressFamily, SockFlag, SockProtocol};
        let socket = sock::socket(
            AddressFamily::Netlink,
            sock::SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        sock::bind(socket.as_raw_fd(), &sock::NetlinkAddr::new(0, RTMGRP_LINK))?;
        let wake = nix::sys::time::TimeVal::new(0, WATCH_WAKE.as_micros() as _);
        sock::setsockopt(&socket, sock::sockopt::ReceiveTimeout, &wake)?;
        Ok(LinkEvents {
            socket,
            buffer: vec![0; RECV_BUFFER],
        })
    }

    /// Waits up to [`WATCH_WAKE`] for notifications and reads all that are queued. True if
    /// any came, or some were lost to a full buffer: either way the links may have changed.
    fn wait(&mut self) -> bool {
        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, recv};
        let fd = self.socket.as_raw_fd();
        match recv(fd, &mut self.buffer, MsgFlags::empty()) {
            Ok(_) | Err(Errno::ENOBUFS) => {
                // Drain the rest (bounded): one dump answers them all.
                for _ in 0..DRAIN_MAX {
                    match recv(fd, &mut self.buffer, MsgFlags::MSG_DONTWAIT) {
                        Ok(_) | Err(Errno::ENOBUFS) => {}
                        Err(_) => break,
                    }
                }
                true
            }
            Err(Errno::EAGAIN | Errno::EINTR) => false,
            Err(_) => {
                // Not expected from a bound netlink socket; never spin on it.
                std::thread::sleep(WATCH_WAKE);
                false
            }
        }
    }
}

fn carrier_map(links: &[Link]) -> CarrierMap {
    links
        .iter()
        .map(|l| (l.name.clone(), l.has_carrier()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const ETH_FLAGS: u32 = IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_LOWER_UP;

    fn eth(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            link_type: ARPHRD_ETHER,
            flags: ETH_FLAGS,
            mac: Some(MacAddr([2, 0, 0, 0, 0, index as u8])),
            master: None,
            operstate: Some(OPER_UP),
            carrier: Some(true),
        }
    }

    fn fake_links() -> Vec<Link> {
        let lo = Link {
            link_type: 772,
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
            mac: Some(MacAddr::ZERO),
            operstate: Some(OPER_UNKNOWN),
            ..eth(1, "lo")
        };
        let wg = Link {
            link_type: 65534,
            flags: IFF_UP | IFF_POINTOPOINT | IFF_NOARP | IFF_RUNNING,
            mac: None,
            ..eth(3, "wg0")
        };
        let down = Link {
            flags: IFF_BROADCAST,
            carrier: Some(false),
            operstate: Some(2),
            ..eth(4, "eth1")
        };
        let bond_member = Link {
            master: Some(6),
            ..eth(5, "eth2")
        };
        let noarp = Link {
            flags: ETH_FLAGS | IFF_NOARP,
            ..eth(7, "eth3")
        };
        let no_carrier = Link {
            flags: IFF_UP | IFF_BROADCAST,
            carrier: Some(false),
            operstate: Some(3),
            ..eth(8, "eth4")
        };
        let ipoib = Link {
            link_type: 32,
            mac: None,
            ..eth(9, "ib0")
        };
        vec![
            lo,
            eth(2, "eth0"),
            wg,
            down,
            bond_member,
            eth(6, "bond0"),
            noarp,
            no_carrier,
            ipoib,
        ]
    }

    #[test]
    fn all_selects_only_usable_links_and_reports_nothing() {
        let s = select_from(&fake_links(), &Interfaces::All);
        let names: Vec<_> = s.usable.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "bond0", "eth4"]);
        assert!(s.unusable.is_empty());
        let eth4 = &s.usable[2];
        assert_eq!((eth4.index, eth4.carrier), (8, false));
        assert_eq!(s.usable[0].mac, MacAddr([2, 0, 0, 0, 0, 2]));
    }

    #[test]
    fn named_unusable_interfaces_are_reported_with_a_reason() {
        let names: BTreeSet<String> = ["eth0", "eth1", "eth2", "eth3", "ib0", "lo", "nope", "wg0"]
            .into_iter()
            .map(String::from)
            .collect();
        let s = select_from(&fake_links(), &Interfaces::Named(names));
        assert_eq!(s.usable.len(), 1);
        assert_eq!(s.usable[0].name, "eth0");
        let reasons: BTreeMap<_, _> = s.unusable.into_iter().collect();
        assert_eq!(reasons["eth1"], Unusable::Down);
        assert_eq!(reasons["eth2"], Unusable::Enslaved { master: 6 });
        assert_eq!(reasons["eth3"], Unusable::NoArp);
        assert_eq!(reasons["ib0"], Unusable::NotEthernet(32));
        assert_eq!(reasons["lo"], Unusable::Loopback);
        assert_eq!(reasons["nope"], Unusable::NotFound);
        assert_eq!(reasons["wg0"], Unusable::PointToPoint);
    }

    #[test]
    fn usability_rejects_no_broadcast_and_bad_macs() {
        let nobcast = Link {
            flags: IFF_UP,
            ..eth(2, "x")
        };
        assert_eq!(nobcast.usability(), Err(Unusable::NoBroadcast));
        for mac in [None, Some(MacAddr::ZERO), Some(MacAddr([1, 0, 0, 0, 0, 1]))] {
            assert_eq!(
                Link { mac, ..eth(2, "x") }.usability(),
                Err(Unusable::NoMac)
            );
        }
    }

    #[test]
    fn carrier_needs_admin_up_lower_up_and_operstate() {
        assert!(eth(2, "x").has_carrier());
        let dummy = Link {
            operstate: Some(OPER_UNKNOWN),
            ..eth(2, "x")
        };
        assert!(dummy.has_carrier());
        let dormant = Link {
            operstate: Some(5),
            ..eth(2, "x")
        };
        assert!(!dormant.has_carrier());
        let no_carrier = Link {
            carrier: Some(false),
            ..eth(2, "x")
        };
        assert!(!no_carrier.has_carrier());
        let admin_down = Link {
            flags: IFF_BROADCAST | IFF_LOWER_UP | IFF_RUNNING,
            ..eth(2, "x")
        };
        assert!(!admin_down.has_carrier());
        // Without the attributes, the flags decide.
        let flags_only = Link {
            carrier: None,
            operstate: None,
            ..eth(2, "x")
        };
        assert!(flags_only.has_carrier());
        let flags_down = Link {
            flags: IFF_UP | IFF_BROADCAST,
            ..flags_only.clone()
        };
        assert!(!flags_down.has_carrier());
    }

    use ferrolb_shared::netlink::{NLA_F_NESTED, push_attr as attr};

    fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_message(&mut out, kind, flags, seq, body);
        out
    }

    fn newlink(index: u32, name: &str, master: Option<u32>) -> Vec<u8> {
        let mut body = vec![0, 0];
        body.extend_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        body.extend_from_slice(&index.to_ne_bytes());
        body.extend_from_slice(&ETH_FLAGS.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        let mut name0 = name.as_bytes().to_vec();
        name0.push(0);
        attr(&mut body, IFLA_IFNAME, &name0);
        attr(&mut body, IFLA_ADDRESS, &[2, 0, 0, 0, 0, 9]);
        if let Some(m) = master {
            attr(&mut body, IFLA_MASTER, &m.to_ne_bytes());
        }
        attr(&mut body, IFLA_OPERSTATE | NLA_F_NESTED, &[OPER_UP]); // a nested flag is masked
        attr(&mut body, IFLA_CARRIER, &[1]);
        attr(&mut body, 999, &[1, 2, 3]); // unknown attributes are skipped
        body
    }

    #[test]
    fn parses_a_dump() {
        let mut datagram = message(RTM_NEWLINK, 2, 7, &newlink(4, "veth-a", Some(3)));
        datagram.extend(message(RTM_NEWLINK, 2, 6, &newlink(5, "stale", None)));
        let mut links = Vec::new();
        assert_eq!(
            parse_datagram(&datagram, 7, &mut links).unwrap(),
            Progress::More { interrupted: false }
        );
        assert_eq!(
            links,
            [Link {
                index: 4,
                name: "veth-a".into(),
                link_type: ARPHRD_ETHER,
                flags: ETH_FLAGS,
                mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
                master: Some(3),
                operstate: Some(OPER_UP),
                carrier: Some(true),
            }]
        );
        let done = message(NLMSG_DONE, NLM_F_DUMP_INTR, 7, &0u32.to_ne_bytes());
        assert_eq!(
            parse_datagram(&done, 7, &mut links).unwrap(),
            Progress::Done { interrupted: true }
        );
    }

    #[test]
    fn reports_kernel_errors_and_malformed_messages() {
        let error = message(NLMSG_ERROR, 0, 1, &(-1i32).to_ne_bytes());
        let mut links = Vec::new();
        assert!(matches!(
            parse_datagram(&error, 1, &mut links),
            Err(LinkDumpError::Kernel(e)) if e.raw_os_error() == Some(1)
        ));
        let mut truncated = message(RTM_NEWLINK, 0, 1, &newlink(1, "x", None));
        truncated.truncate(30);
        assert!(matches!(
            parse_datagram(&truncated, 1, &mut links),
            Err(LinkDumpError::Malformed(_))
        ));
        let mut bad_attr = newlink(1, "x", None);
        bad_attr[IFINFOMSG_LEN] = 200; // rtattr length past the end
        assert!(matches!(
            parse_datagram(&message(RTM_NEWLINK, 0, 1, &bad_attr), 1, &mut links),
            Err(LinkDumpError::Malformed(_))
        ));
        assert!(links.is_empty());
    }

    #[test]
    fn never_panics_on_truncations() {
        let mut datagram = message(RTM_NEWLINK, 2, 7, &newlink(4, "veth-a", Some(3)));
        datagram.extend(message(NLMSG_DONE, 2, 7, &[0; 4]));
        for cut in 0..datagram.len() {
            let _ = parse_datagram(&datagram[..cut], 7, &mut Vec::new());
        }
    }

    #[test]
    fn the_request_is_a_link_dump() {
        let r = dump_request(9);
        assert_eq!(r.len(), 32);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETLINK));
        assert_eq!(u16_at(&r, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&r, 8), Some(9));
    }

    /// The real kernel, in whatever namespace the test runs: there is always `lo`.
    #[test]
    fn dumps_the_real_links() {
        let links = links().expect("link dump");
        let lo = links.iter().find(|l| l.name == "lo").expect("lo");
        assert_eq!(lo.usability(), Err(Unusable::Loopback));
    }
}
