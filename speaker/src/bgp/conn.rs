//! TCP for one BGP peer: outbound attempts, and a reader and a writer task per connection,
//! all reporting to the peer's task through one channel of [`Io`] events.
//!
//! The peer's task never awaits a socket itself, so a slow or silent peer cannot stall its
//! timers: writes are queued to the writer task, reads arrive as [`Io::Bytes`].

use super::md5;
use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_shared::bgp::session::ConnId;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// The TTL of single-hop eBGP: the peer must be on our link, so nothing we send survives a
/// router (what FRR and GoBGP send without multi-hop).
const SINGLE_HOP_TTL: u32 = 1;
/// The TTL of iBGP and eBGP multi-hop: RFC 4271 leaves it to the operator; routers send 255,
/// which is also what a peer enforcing GTSM (RFC 5082) requires.
pub const MAX_TTL: u32 = 255;
/// Bytes read per system call.
const READ_CHUNK: usize = 64 * 1024;

/// What happened on the peer's sockets.
#[derive(Debug)]
pub enum Io {
    /// Outbound attempt `attempt` connected.
    Connected { attempt: u64, stream: TcpStream },
    /// Outbound attempt `attempt` failed.
    ConnectFailed { attempt: u64, error: String },
    /// Bytes read from a connection.
    Bytes(ConnId, Vec<u8>),
    /// The connection ended (EOF, reset, or a write failed).
    Closed(ConnId),
    /// A BFD Control packet from the peer (`bfd.rs`).
    Bfd(ferrolb_shared::bfd::packet::ControlPacket),
}

/// How to open a connection to the peer.
#[derive(Clone, Debug)]
pub struct Dial {
    pub peer: SocketAddr,
    /// Bind to this address first (`BGPPeer.sourceAddress`).
    pub source: Option<IpAddr>,
    /// Give up after this long (`BGPPeer.connectTime`).
    pub timeout: Duration,
    /// The TTL (IPv4) or hop limit (IPv6) of every segment we send ([`ttl`]).
    pub ttl: u32,
    /// Sign the connection with TCP-MD5 (`BGPPeer.password`).
    pub md5: Option<md5::Key>,
}

/// Starts outbound attempt `attempt`; its outcome arrives on `io`.
pub fn connect(dial: Dial, attempt: u64, io: mpsc::UnboundedSender<Io>) -> AbortOnDrop<()> {
    AbortOnDrop(tokio::spawn(async move {
        let event = match tokio::time::timeout(dial.timeout, open(&dial)).await {
            Ok(Ok(stream)) => Io::Connected { attempt, stream },
            Ok(Err(e)) => Io::ConnectFailed {
                attempt,
                error: e.to_string(),
            },
            Err(_) => Io::ConnectFailed {
                attempt,
                error: format!("no answer within {:?}", dial.timeout),
            },
        };
        let _ = io.send(event);
    }))
}

async fn open(dial: &Dial) -> std::io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(dial.peer),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // Before connect, so the SYN already carries it: a peer enforcing GTSM drops one that
    // does not.
    set_ttl((&socket).into(), dial.peer.is_ipv6(), dial.ttl)?;
    if let Some(key) = &dial.md5 {
        // Before connect: the SYN itself must be signed, or the peer drops it.
        md5::set(socket.as_fd(), dial.peer.ip(), Some(key)).map_err(|e| {
            tracing::warn!("cannot set the TCP-MD5 key: {e}");
            std::io::Error::new(e.kind(), format!("setting the TCP-MD5 key: {e}"))
        })?;
    }
    if let Some(source) = dial.source {
        socket.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
    }
    socket.set_nonblocking(true)?;
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    let stream = socket.connect(dial.peer).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The TTL of a peer's connections, as FRR and GoBGP choose it: 1 for single-hop eBGP, so
/// a session can only form with a neighbor on our link; 255 for eBGP multi-hop and for iBGP,
/// whose peers are routinely several hops away (a route reflector, a loopback).
pub fn ttl(ibgp: bool, ebgp_multihop: bool) -> u32 {
    if ibgp || ebgp_multihop {
        MAX_TTL
    } else {
        SINGLE_HOP_TTL
    }
}

/// Sets the TTL (IPv4) or the unicast hop limit (IPv6) of `socket`.
pub fn set_ttl(socket: socket2::SockRef<'_>, v6: bool, ttl: u32) -> std::io::Result<()> {
    if v6 {
        socket.set_unicast_hops_v6(ttl)
    } else {
        socket.set_ttl_v4(ttl)
    }
}

/// An open connection: the writer's queue and the reader task.
pub struct Conn {
    /// Dropping it lets the writer flush what is queued, then shut the socket down.
    writer: mpsc::UnboundedSender<Vec<u8>>,
    _reader: AbortOnDrop<()>,
    /// Our end: the next hop we advertise over it.
    pub local: SocketAddr,
}

impl Conn {
    /// Takes over `stream` as connection `id`; its bytes and its end arrive on `io`.
    pub fn start(id: ConnId, stream: TcpStream, io: mpsc::UnboundedSender<Io>) -> Option<Conn> {
        let local = stream.local_addr().ok()?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let (writer, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let io_w = io.clone();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if wr.write_all(&bytes).await.is_err() {
                    let _ = io_w.send(Io::Closed(id));
                    return;
                }
            }
            // The session closed the connection: FIN after the last message (a NOTIFICATION).
            let _ = wr.shutdown().await;
        });
        let reader = AbortOnDrop(tokio::spawn(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = io.send(Io::Closed(id));
                        return;
                    }
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default().to_vec();
                        if io.send(Io::Bytes(id, chunk)).is_err() {
                            return;
                        }
                    }
                }
            }
        }));
        Some(Conn {
            writer,
            _reader: reader,
            local,
        })
    }

    /// Queues bytes for the peer.
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.writer.send(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_one_for_single_hop_ebgp_and_255_otherwise() {
        assert_eq!(ttl(false, false), 1, "single-hop eBGP");
        assert_eq!(ttl(false, true), 255, "eBGP multi-hop");
        assert_eq!(ttl(true, false), 255, "iBGP");
        // Validation rejects ebgpMultiHop on iBGP; should one get through, still 255.
        assert_eq!(ttl(true, true), 255);
    }

    #[test]
    fn set_ttl_sets_the_option_of_the_socket_family() {
        // Sockets that are never connected or bound: nothing leaves the process.
        for (domain, v6) in [(Domain::IPV4, false), (Domain::IPV6, true)] {
            let s = Socket::new(domain, Type::STREAM, None).unwrap();
            for want in [1, 255] {
                set_ttl((&s).into(), v6, want).unwrap();
                let got = if v6 {
                    s.unicast_hops_v6().unwrap()
                } else {
                    s.ttl_v4().unwrap()
                };
                assert_eq!(got, want, "v6: {v6}");
            }
        }
    }
}
