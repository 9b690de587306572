//! The kernel's IPVS table over generic netlink (linux/ip_vs.h): the messages `ipvsadm` sends
//! to add, change and delete virtual servers ("services") and real servers ("destinations"),
//! the dumps that read the table back, and the resolution of the `IPVS` family's id. Pure:
//! this module makes the bytes and reads the replies; the speaker owns the socket.
//!
//! ```text
//! nlmsghdr (type: the IPVS family id) | genlmsghdr (cmd, version 1) | attributes
//!   IPVS_CMD_ATTR_SERVICE (nested)  AF, PROTOCOL, ADDR (16 bytes), PORT (network order),
//!                                   SCHED_NAME, FLAGS {flags, mask}, TIMEOUT, NETMASK
//!   IPVS_CMD_ATTR_DEST (nested)     ADDR, PORT, FWD_METHOD, WEIGHT, U/L_THRESH, ADDR_FAMILY
//! ```
//!
//! Every message is laid out as ipvsadm 1.31 (libipvs over libnl 3) lays it out, byte for
//! byte (checked against messages captured from it in `genl/tests.rs`). Replies are read with
//! checked lengths: a malformed reply is an error naming what was wrong, never a panic
//! (fuzz target `ipvs_replies`).

use super::model::Proto;
use crate::netlink::{self, NLA_F_NESTED, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use crate::netlink::{push_attr, push_message, u32_at};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The generic netlink controller's fixed id, and its command and attributes.
pub const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// The name IPVS registers its generic netlink family under, and its version.
pub const IPVS_GENL_NAME: &str = "IPVS";
const IPVS_GENL_VERSION: u8 = 1;

/// IPVS commands (`enum IPVS_CMD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    NewService = 1,
    SetService = 2,
    DelService = 3,
    GetService = 4,
    NewDest = 5,
    SetDest = 6,
    DelDest = 7,
    GetDest = 8,
    Flush = 17,
}

const CMD_ATTR_SERVICE: u16 = 1;
const CMD_ATTR_DEST: u16 = 2;

const SVC_ATTR_AF: u16 = 1;
const SVC_ATTR_PROTOCOL: u16 = 2;
const SVC_ATTR_ADDR: u16 = 3;
const SVC_ATTR_PORT: u16 = 4;
const SVC_ATTR_FWMARK: u16 = 5;
const SVC_ATTR_SCHED_NAME: u16 = 6;
const SVC_ATTR_FLAGS: u16 = 7;
const SVC_ATTR_TIMEOUT: u16 = 8;
const SVC_ATTR_NETMASK: u16 = 9;

const DEST_ATTR_ADDR: u16 = 1;
const DEST_ATTR_PORT: u16 = 2;
const DEST_ATTR_FWD_METHOD: u16 = 3;
const DEST_ATTR_WEIGHT: u16 = 4;
const DEST_ATTR_U_THRESH: u16 = 5;
const DEST_ATTR_L_THRESH: u16 = 6;
const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
const DEST_ATTR_INACT_CONNS: u16 = 8;
const DEST_ATTR_PERSIST_CONNS: u16 = 9;
const DEST_ATTR_ADDR_FAMILY: u16 = 11;
const DEST_ATTR_TUN_TYPE: u16 = 13;
const DEST_ATTR_TUN_PORT: u16 = 14;
const DEST_ATTR_TUN_FLAGS: u16 = 15;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;
const IPPROTO_SCTP: u16 = 132;

/// Service flags (`IP_VS_SVC_F_*`).
pub const SVC_F_PERSISTENT: u32 = 0x1;
/// Scheduler flags: for sh and mh, `SCHED1` is "fallback" and `SCHED2` "port".
pub const SVC_F_SCHED1: u32 = 0x8;
pub const SVC_F_SCHED2: u32 = 0x10;
/// Forwarding methods (`IP_VS_CONN_F_*`): FerroLB uses masquerading (NAT) only.
pub const FWD_MASQ: u32 = 0;

/// What identifies a virtual server in the kernel: protocol, address and port, or a firewall
/// mark (FerroLB never makes those, but another tool's may be in the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceId {
    Addr {
        proto: Proto,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        ipv6: bool,
        mark: u32,
    },
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceId::Addr { proto, addr, port } => match addr {
                IpAddr::V4(a) => write!(f, "{proto}/{a}:{port}"),
                IpAddr::V6(a) => write!(f, "{proto}/[{a}]:{port}"),
            },
            ServiceId::Fwmark { ipv6, mark } => {
                write!(f, "fwmark {mark}{}", if ipv6 { " (IPv6)" } else { "" })
            }
        }
    }
}

/// A virtual server's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    pub id: ServiceId,
    /// `rr`, `wrr`, `lc`, ... as the kernel module names them (`ip_vs_<name>`).
    pub scheduler: String,
    /// `SVC_F_*`; the kernel adds `HASHED` (0x2) in what it reports.
    pub flags: u32,
    /// Persistence timeout in seconds (with `SVC_F_PERSISTENT`).
    pub timeout: u32,
    /// Persistence granularity: 0xffffffff for IPv4, 128 for IPv6 (one client address).
    pub netmask: u32,
}

/// A real server's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// `FWD_*`.
    pub fwd: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

impl Dest {
    /// A masquerading real server with no connection thresholds.
    pub fn masq(addr: IpAddr, port: u16, weight: u32) -> Self {
        Dest {
            addr,
            port,
            weight,
            fwd: FWD_MASQ,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }
}

/// A real server as the kernel reports it, with its connection counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestState {
    pub dest: Dest,
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

/// Why a reply could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed netlink: {0}")]
    Framing(&'static str),
    #[error("the kernel refused the request: errno {0}")]
    Refused(i32),
    #[error("{what}: attribute {attr} is {len} bytes, expected {expected}")]
    BadLength {
        what: &'static str,
        attr: u16,
        len: usize,
        expected: &'static str,
    },
    #[error("{what}: attribute {attr} is missing")]
    Missing { what: &'static str, attr: u16 },
    #[error("{what}: unknown {field} {value}")]
    Unknown {
        what: &'static str,
        field: &'static str,
        value: u32,
    },
    #[error("a genetlink message shorter than its 4-byte header")]
    ShortGenl,
}

/// The request resolving the IPVS family's id (`CTRL_CMD_GETFAMILY`).
pub fn resolve_family(seq: u32) -> Vec<u8> {
    let mut attrs = Vec::new();
    push_attr(
        &mut attrs,
        CTRL_ATTR_FAMILY_NAME,
        format!("{IPVS_GENL_NAME}\0").as_bytes(),
    );
    let mut out = Vec::new();
    push_message(
        &mut out,
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &genl(CTRL_CMD_GETFAMILY, &attrs),
    );
    out
}

/// A request changing a virtual server (`NewService`, `SetService`, `DelService`), with an
/// acknowledgement asked for. A deletion names the virtual server only, as ipvsadm does.
pub fn service_request(family: u16, cmd: Command, svc: &Service, seq: u32) -> Vec<u8> {
    let attrs = match cmd {
        Command::DelService => service_key_attrs(&svc.id),
        _ => service_attrs(svc),
    };
    let mut body = Vec::new();
    push_nested(&mut body, CMD_ATTR_SERVICE, &attrs);
    request(family, cmd, NLM_F_ACK, seq, &body)
}

/// A request changing a real server of virtual server `svc` (`NewDest`, `SetDest`,
/// `DelDest`).
pub fn dest_request(family: u16, cmd: Command, svc: &ServiceId, dest: &Dest, seq: u32) -> Vec<u8> {
    let mut body = Vec::new();
    push_nested(&mut body, CMD_ATTR_SERVICE, &service_key_attrs(svc));
    push_nested(&mut body, CMD_ATTR_DEST, &dest_attrs(dest));
    request(family, cmd, NLM_F_ACK, seq, &body)
}

/// A dump of every virtual server.
pub fn dump_services(family: u16, seq: u32) -> Vec<u8> {
    request(
        family,
        Command::GetService,
        NLM_F_ACK | NLM_F_DUMP,
        seq,
        &[],
    )
}

/// A dump of the real servers of virtual server `svc`.
pub fn dump_dests(family: u16, svc: &ServiceId, seq: u32) -> Vec<u8> {
    let mut body = Vec::new();
    push_nested(&mut body, CMD_ATTR_SERVICE, &service_id_attrs(svc));
    request(family, Command::GetDest, NLM_F_ACK | NLM_F_DUMP, seq, &body)
}

/// The attributes that identify a virtual server: family, then protocol, address and port
/// (or the firewall mark).
fn service_id_attrs(id: &ServiceId) -> Vec<u8> {
    let mut a = Vec::new();
    let af = if is_ipv6(id) { AF_INET6 } else { AF_INET };
    push_attr(&mut a, SVC_ATTR_AF, &af.to_ne_bytes());
    match *id {
        ServiceId::Addr { proto, addr, port } => {
            push_attr(
                &mut a,
                SVC_ATTR_PROTOCOL,
                &proto_number(proto).to_ne_bytes(),
            );
            push_attr(&mut a, SVC_ATTR_ADDR, &addr_bytes(addr));
            push_attr(&mut a, SVC_ATTR_PORT, &port.to_be_bytes());
        }
        ServiceId::Fwmark { mark, .. } => push_attr(&mut a, SVC_ATTR_FWMARK, &mark.to_ne_bytes()),
    }
    a
}

/// Every attribute of a virtual server, as a new or changed one is sent.
fn service_attrs(svc: &Service) -> Vec<u8> {
    let mut a = service_id_attrs(&svc.id);
    push_attr(
        &mut a,
        SVC_ATTR_SCHED_NAME,
        format!("{}\0", svc.scheduler).as_bytes(),
    );
    let mut flags = svc.flags.to_ne_bytes().to_vec();
    flags.extend(u32::MAX.to_ne_bytes());
    push_attr(&mut a, SVC_ATTR_FLAGS, &flags);
    push_attr(&mut a, SVC_ATTR_TIMEOUT, &svc.timeout.to_ne_bytes());
    push_attr(&mut a, SVC_ATTR_NETMASK, &svc.netmask.to_ne_bytes());
    a
}

/// A virtual server named for a deletion or for its real servers: ipvsadm sends the identity
/// with an empty scheduler, no flags, no timeout and the family's whole-address netmask.
fn service_key_attrs(id: &ServiceId) -> Vec<u8> {
    service_attrs(&Service {
        id: *id,
        scheduler: String::new(),
        flags: 0,
        timeout: 0,
        netmask: whole_address_netmask(is_ipv6(id)),
    })
}

/// The persistence netmask that keeps one client address: all ones for IPv4, a prefix
/// length of 128 for IPv6.
pub fn whole_address_netmask(ipv6: bool) -> u32 {
    if ipv6 { 128 } else { u32::MAX }
}

fn is_ipv6(id: &ServiceId) -> bool {
    match *id {
        ServiceId::Addr { addr, .. } => addr.is_ipv6(),
        ServiceId::Fwmark { ipv6, .. } => ipv6,
    }
}

/// A real server's attributes, in ipvsadm's order (tunnel settings zero: FerroLB
/// masquerades).
fn dest_attrs(d: &Dest) -> Vec<u8> {
    let mut a = Vec::new();
    let af = if d.addr.is_ipv6() { AF_INET6 } else { AF_INET };
    push_attr(&mut a, DEST_ATTR_ADDR_FAMILY, &af.to_ne_bytes());
    push_attr(&mut a, DEST_ATTR_ADDR, &addr_bytes(d.addr));
    push_attr(&mut a, DEST_ATTR_PORT, &d.port.to_be_bytes());
    push_attr(&mut a, DEST_ATTR_FWD_METHOD, &d.fwd.to_ne_bytes());
    push_attr(&mut a, DEST_ATTR_WEIGHT, &d.weight.to_ne_bytes());
    push_attr(&mut a, DEST_ATTR_TUN_TYPE, &[0]);
    push_attr(&mut a, DEST_ATTR_TUN_PORT, &0u16.to_ne_bytes());
    push_attr(&mut a, DEST_ATTR_TUN_FLAGS, &0u16.to_ne_bytes());
    push_attr(&mut a, DEST_ATTR_U_THRESH, &d.upper_threshold.to_ne_bytes());
    push_attr(&mut a, DEST_ATTR_L_THRESH, &d.lower_threshold.to_ne_bytes());
    a
}

fn request(family: u16, cmd: Command, flags: u16, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_message(
        &mut out,
        family,
        NLM_F_REQUEST | flags,
        seq,
        &genl(cmd as u8, attrs),
    );
    out
}

/// A genetlink header (command, version, reserved) followed by `attrs`.
fn genl(cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let mut body = vec![cmd, IPVS_GENL_VERSION, 0, 0];
    body.extend(attrs);
    body
}

fn genl_payload(body: &[u8]) -> Result<&[u8], DecodeError> {
    body.get(4..).ok_or(DecodeError::ShortGenl)
}

fn push_nested(out: &mut Vec<u8>, kind: u16, attrs: &[u8]) {
    push_attr(out, kind | NLA_F_NESTED, attrs);
}

/// `union nf_inet_addr`: 16 bytes, an IPv4 address in the first four.
fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

fn proto_number(proto: Proto) -> u16 {
    proto.number().into()
}

fn proto_of(number: u16) -> Option<Proto> {
    match number {
        IPPROTO_TCP => Some(Proto::Tcp),
        IPPROTO_UDP => Some(Proto::Udp),
        IPPROTO_SCTP => Some(Proto::Sctp),
        _ => None,
    }
}

mod decode;
pub use decode::{Reply, family_id, parse_acks, parse_dests, parse_services};

#[cfg(test)]
mod tests;
