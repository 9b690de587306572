//! The IPVS generic netlink socket: the one place the IPVS data path talks to the kernel. The
//! bytes come from `ferrolb_shared::ipvs::genl`; this file only sends them, waits for the
//! kernel's answers and collects dumps. Blocking calls: the driver runs them off the event
//! loop (`spawn_blocking`).

use ferrolb_shared::ipvs::genl::{
    self, Command, DecodeError, Dest, DestState, Reply, Service, ServiceId,
};
use nix::sys::socket::{self as sock, AddressFamily, MsgFlags, SockFlag, SockProtocol};
use std::os::fd::{AsRawFd, OwnedFd};

/// How long the kernel may take to answer: it answers at once, so this only bounds a stuck
/// socket.
const REPLY_TIMEOUT: nix::sys::time::TimeVal = nix::sys::time::TimeVal::new(2, 0);

/// Why an IPVS request failed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error("generic netlink socket: {what}: {errno}")]
    Socket {
        what: &'static str,
        errno: nix::Error,
    },
    #[error("the kernel has no IPVS (the ip_vs module is not loaded and cannot be loaded): {0}")]
    Unavailable(nix::Error),
    #[error("the kernel refused {what}: {errno}")]
    Refused {
        what: String,
        errno: nix::errno::Errno,
    },
    #[error("cannot read the kernel's answer: {0}")]
    Decode(#[from] DecodeError),
    #[error("the IPVS state file {path}: {source}")]
    State {
        path: String,
        source: std::io::Error,
    },
}

/// A generic netlink socket speaking to the kernel's IPVS family.
pub struct IpvsSocket {
    fd: OwnedFd,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl IpvsSocket {
    /// Opens the socket and resolves the IPVS family. Asking for the family loads `ip_vs` if
    /// the kernel has it as a module (the family's alias autoloads it); a kernel without IPVS
    /// answers ENOENT: [`IpvsError::Unavailable`].
    pub fn open() -> Result<IpvsSocket, IpvsError> {
        let fail = |what| move |errno| IpvsError::Socket { what, errno };
        let fd = sock::socket(
            AddressFamily::Netlink,
            sock::SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkGeneric,
        )
        .map_err(fail("socket"))?;
        sock::bind(fd.as_raw_fd(), &sock::NetlinkAddr::new(0, 0)).map_err(fail("bind"))?;
        sock::setsockopt(&fd, sock::sockopt::ReceiveTimeout, &REPLY_TIMEOUT)
            .map_err(fail("SO_RCVTIMEO"))?;
        // Dumps of large tables arrive in many datagrams; a bigger buffer means fewer reads.
        let _ = sock::setsockopt(&fd, sock::sockopt::RcvBuf, &(4 << 20));
        let mut socket = IpvsSocket {
            fd,
            family: 0,
            seq: 0,
            buf: vec![0; 64 * 1024],
        };
        let seq = socket.next_seq();
        socket.send(&genl::resolve_family(seq))?;
        loop {
            let n = socket.recv()?;
            match genl::family_id(&socket.buf[..n]) {
                Ok(Some(id)) => {
                    socket.family = id;
                    return Ok(socket);
                }
                Ok(None) => continue,
                Err(DecodeError::Refused(code)) => {
                    return Err(IpvsError::Unavailable(nix::errno::Errno::from_raw(-code)));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The IPVS family id the kernel gave.
    pub fn family(&self) -> u16 {
        self.family
    }

    /// Adds, changes or deletes a virtual server, and waits for the kernel's answer.
    pub fn service(&mut self, cmd: Command, svc: &Service) -> Result<(), IpvsError> {
        let seq = self.next_seq();
        let message = genl::service_request(self.family, cmd, svc, seq);
        self.request(&message, seq, || format!("{cmd:?} {}", svc.id))
    }

    /// Adds, changes or deletes a real server of `svc`, and waits for the kernel's answer.
    pub fn dest(&mut self, cmd: Command, svc: &ServiceId, dest: &Dest) -> Result<(), IpvsError> {
        let seq = self.next_seq();
        let message = genl::dest_request(self.family, cmd, svc, dest, seq);
        self.request(&message, seq, || {
            format!("{cmd:?} {svc} real server {}:{}", dest.addr, dest.port)
        })
    }

    /// Every virtual server in the kernel's table.
    pub fn services(&mut self) -> Result<Vec<Service>, IpvsError> {
        let seq = self.next_seq();
        self.send(&genl::dump_services(self.family, seq))?;
        self.collect(genl::parse_services, || "the virtual server dump".into())
    }

    /// The real servers of `svc`, with their connection counts.
    pub fn dests(&mut self, svc: &ServiceId) -> Result<Vec<DestState>, IpvsError> {
        let seq = self.next_seq();
        self.send(&genl::dump_dests(self.family, svc, seq))?;
        self.collect(genl::parse_dests, || {
            format!("the real server dump of {svc}")
        })
    }

    fn request(
        &mut self,
        message: &[u8],
        seq: u32,
        what: impl Fn() -> String,
    ) -> Result<(), IpvsError> {
        self.send(message)?;
        loop {
            let n = self.recv()?;
            let reply = genl::parse_acks(&self.buf[..n])?;
            if let Some((_, code)) = reply.refused.iter().find(|(s, _)| *s == seq) {
                return Err(IpvsError::Refused {
                    what: what(),
                    errno: nix::errno::Errno::from_raw(-code),
                });
            }
            if reply.acked.contains(&seq) {
                return Ok(());
            }
        }
    }

    /// The items of a dump, datagram by datagram, until the kernel says it is done.
    fn collect<T>(
        &mut self,
        parse: fn(&[u8]) -> Result<Reply<T>, DecodeError>,
        what: impl Fn() -> String,
    ) -> Result<Vec<T>, IpvsError> {
        let mut items = Vec::new();
        loop {
            let n = self.recv()?;
            let reply = parse(&self.buf[..n])?;
            if let Some((_, code)) = reply.refused.first() {
                return Err(IpvsError::Refused {
                    what: what(),
                    errno: nix::errno::Errno::from_raw(-code),
                });
            }
            items.extend(reply.items);
            if reply.done {
                return Ok(items);
            }
        }
    }

    fn send(&self, message: &[u8]) -> Result<(), IpvsError> {
        sock::send(self.fd.as_raw_fd(), message, MsgFlags::empty())
            .map(|_| ())
            .map_err(|errno| IpvsError::Socket {
                what: "send",
                errno,
            })
    }

    fn recv(&mut self) -> Result<usize, IpvsError> {
        sock::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()).map_err(|errno| {
            IpvsError::Socket {
                what: "waiting for the kernel's answer",
                errno,
            }
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }
}
