//! Reading the kernel's replies: dumps of virtual and real servers, acknowledgements and the
//! family id. Every length is checked; a malformed reply is an error that says what was
//! wrong, never a panic.

use super::*;

/// The IPVS family id from the controller's reply; `Ok(None)` when the datagram holds only
/// acknowledgements. A kernel without IPVS answers ENOENT: `Err(Refused(-2))`.
pub fn family_id(reply: &[u8]) -> Result<Option<u16>, DecodeError> {
    for message in netlink::messages(reply) {
        let message = message.map_err(DecodeError::Framing)?;
        if let Some(code) = message.error_code() {
            if code != 0 {
                return Err(DecodeError::Refused(code));
            }
            continue;
        }
        if message.kind != GENL_ID_CTRL {
            continue;
        }
        for attr in netlink::attributes(genl_payload(message.body)?) {
            let (kind, value) = attr.map_err(DecodeError::Framing)?;
            if kind == CTRL_ATTR_FAMILY_ID {
                return u16_of("genl family", kind, value).map(Some);
            }
        }
    }
    Ok(None)
}

/// What one datagram of a reply holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply<T> {
    pub items: Vec<T>,
    /// Sequence numbers acknowledged (error code 0).
    pub acked: Vec<u32>,
    /// `NLMSG_DONE` ended a dump.
    pub done: bool,
    /// Requests the kernel refused: sequence number and negative errno.
    pub refused: Vec<(u32, i32)>,
}

/// The virtual servers in one datagram of a `GetService` dump (and any acknowledgements).
pub fn parse_services(datagram: &[u8]) -> Result<Reply<Service>, DecodeError> {
    parse_reply(datagram, CMD_ATTR_SERVICE, parse_service)
}

/// The real servers in one datagram of a `GetDest` dump.
pub fn parse_dests(datagram: &[u8]) -> Result<Reply<DestState>, DecodeError> {
    parse_reply(datagram, CMD_ATTR_DEST, parse_dest)
}

/// The acknowledgements and refusals in a datagram answering change requests.
pub fn parse_acks(datagram: &[u8]) -> Result<Reply<()>, DecodeError> {
    parse_reply(datagram, u16::MAX, |_| Ok(()))
}

fn parse_reply<T>(
    datagram: &[u8],
    outer: u16,
    mut item: impl FnMut(&[u8]) -> Result<T, DecodeError>,
) -> Result<Reply<T>, DecodeError> {
    let mut reply = Reply {
        items: Vec::new(),
        acked: Vec::new(),
        done: false,
        refused: Vec::new(),
    };
    for message in netlink::messages(datagram) {
        let message = message.map_err(DecodeError::Framing)?;
        match message.kind {
            netlink::NLMSG_DONE => reply.done = true,
            netlink::NLMSG_NOOP => {}
            netlink::NLMSG_ERROR => match message.error_code() {
                Some(0) => reply.acked.push(message.seq),
                Some(code) => reply.refused.push((message.seq, code)),
                None => return Err(DecodeError::Framing("an error message without its code")),
            },
            _ => {
                for attr in netlink::attributes(genl_payload(message.body)?) {
                    let (kind, value) = attr.map_err(DecodeError::Framing)?;
                    if kind == outer {
                        reply.items.push(item(value)?);
                    }
                }
            }
        }
    }
    Ok(reply)
}

fn parse_service(attrs: &[u8]) -> Result<Service, DecodeError> {
    const WHAT: &str = "service";
    let (mut af, mut proto, mut addr, mut port, mut fwmark) = (None, None, None, None, None);
    let mut svc = Service {
        id: ServiceId::Fwmark {
            ipv6: false,
            mark: 0,
        },
        scheduler: String::new(),
        flags: 0,
        timeout: 0,
        netmask: 0,
    };
    for attr in netlink::attributes(attrs) {
        let (kind, value) = attr.map_err(DecodeError::Framing)?;
        match kind {
            SVC_ATTR_AF => af = Some(u16_of(WHAT, kind, value)?),
            SVC_ATTR_PROTOCOL => proto = Some(u16_of(WHAT, kind, value)?),
            SVC_ATTR_ADDR => addr = Some(value),
            SVC_ATTR_PORT => port = Some(u16::from_be(u16_of(WHAT, kind, value)?)),
            SVC_ATTR_FWMARK => fwmark = Some(u32_of(WHAT, kind, value)?),
            SVC_ATTR_SCHED_NAME => svc.scheduler = c_string(value),
            SVC_ATTR_FLAGS => {
                svc.flags = u32_at(value, 0).ok_or(DecodeError::BadLength {
                    what: WHAT,
                    attr: kind,
                    len: value.len(),
                    expected: "8 (flags and mask)",
                })?
            }
            SVC_ATTR_TIMEOUT => svc.timeout = u32_of(WHAT, kind, value)?,
            SVC_ATTR_NETMASK => svc.netmask = u32_of(WHAT, kind, value)?,
            _ => {}
        }
    }
    let missing = |attr| DecodeError::Missing { what: WHAT, attr };
    let af = af.ok_or(missing(SVC_ATTR_AF))?;
    let ipv6 = match af {
        AF_INET => false,
        AF_INET6 => true,
        other => {
            return Err(DecodeError::Unknown {
                what: WHAT,
                field: "address family",
                value: u32::from(other),
            });
        }
    };
    svc.id = match (fwmark, proto) {
        (Some(mark), _) if mark != 0 => ServiceId::Fwmark { ipv6, mark },
        (_, proto) => {
            let proto = proto.ok_or(missing(SVC_ATTR_PROTOCOL))?;
            let proto = proto_of(proto).ok_or(DecodeError::Unknown {
                what: WHAT,
                field: "protocol",
                value: u32::from(proto),
            })?;
            let addr = addr.ok_or(missing(SVC_ATTR_ADDR))?;
            ServiceId::Addr {
                proto,
                addr: addr_of(WHAT, SVC_ATTR_ADDR, addr, ipv6)?,
                port: port.ok_or(missing(SVC_ATTR_PORT))?,
            }
        }
    };
    Ok(svc)
}

fn parse_dest(attrs: &[u8]) -> Result<DestState, DecodeError> {
    const WHAT: &str = "real server";
    let (mut addr, mut port, mut family) = (None, None, None);
    let mut state = DestState {
        dest: Dest::masq(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, 0),
        active: 0,
        inactive: 0,
        persistent: 0,
    };
    let d = &mut state.dest;
    for attr in netlink::attributes(attrs) {
        let (kind, value) = attr.map_err(DecodeError::Framing)?;
        match kind {
            DEST_ATTR_ADDR => addr = Some(value),
            DEST_ATTR_PORT => port = Some(u16::from_be(u16_of(WHAT, kind, value)?)),
            DEST_ATTR_FWD_METHOD => d.fwd = u32_of(WHAT, kind, value)?,
            DEST_ATTR_WEIGHT => d.weight = u32_of(WHAT, kind, value)?,
            DEST_ATTR_U_THRESH => d.upper_threshold = u32_of(WHAT, kind, value)?,
            DEST_ATTR_L_THRESH => d.lower_threshold = u32_of(WHAT, kind, value)?,
            DEST_ATTR_ACTIVE_CONNS => state.active = u32_of(WHAT, kind, value)?,
            DEST_ATTR_INACT_CONNS => state.inactive = u32_of(WHAT, kind, value)?,
            DEST_ATTR_PERSIST_CONNS => state.persistent = u32_of(WHAT, kind, value)?,
            DEST_ATTR_ADDR_FAMILY => family = Some(u16_of(WHAT, kind, value)?),
            _ => {}
        }
    }
    let missing = |attr| DecodeError::Missing { what: WHAT, attr };
    let addr = addr.ok_or(missing(DEST_ATTR_ADDR))?;
    // Kernels before 4.13 do not report the family: the address length tells then.
    let ipv6 = match family {
        Some(AF_INET) => false,
        Some(AF_INET6) => true,
        Some(other) => {
            return Err(DecodeError::Unknown {
                what: WHAT,
                field: "address family",
                value: u32::from(other),
            });
        }
        None => addr.len() == 16 && addr[4..].iter().any(|b| *b != 0),
    };
    state.dest.addr = addr_of(WHAT, DEST_ATTR_ADDR, addr, ipv6)?;
    state.dest.port = port.ok_or(missing(DEST_ATTR_PORT))?;
    Ok(state)
}

fn addr_of(what: &'static str, attr: u16, value: &[u8], ipv6: bool) -> Result<IpAddr, DecodeError> {
    let bad = || DecodeError::BadLength {
        what,
        attr,
        len: value.len(),
        expected: if ipv6 { "16" } else { "4 or 16" },
    };
    if ipv6 {
        let octets: [u8; 16] = value.try_into().map_err(|_| bad())?;
        Ok(IpAddr::V6(Ipv6Addr::from(octets)))
    } else {
        let octets: [u8; 4] = value
            .get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?;
        if value.len() != 4 && value.len() != 16 {
            return Err(bad());
        }
        Ok(IpAddr::V4(Ipv4Addr::from(octets)))
    }
}

fn u16_of(what: &'static str, attr: u16, value: &[u8]) -> Result<u16, DecodeError> {
    exact(what, attr, value, "2").map(u16::from_ne_bytes)
}

fn u32_of(what: &'static str, attr: u16, value: &[u8]) -> Result<u32, DecodeError> {
    exact(what, attr, value, "4").map(u32::from_ne_bytes)
}

/// `value` as exactly `N` bytes (`expected` spells `N` for the error).
fn exact<const N: usize>(
    what: &'static str,
    attr: u16,
    value: &[u8],
    expected: &'static str,
) -> Result<[u8; N], DecodeError> {
    value.try_into().map_err(|_| DecodeError::BadLength {
        what,
        attr,
        len: value.len(),
        expected,
    })
}

/// A NUL-terminated string, up to the first NUL (lossy: scheduler names are ASCII).
fn c_string(value: &[u8]) -> String {
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}
