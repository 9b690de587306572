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

/// The TTL of eBGP multi-hop sessions (RFC 4271 leaves it to the operator; routers use 255).
const MULTIHOP_TTL: u32 = 255;
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
    /// eBGP multi-hop: a TTL of 255 instead of the default.
    pub multihop: bool,
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
    if dial.multihop {
        set_ttl(&socket, dial.peer.is_ipv6())?;
    }
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

fn set_ttl(socket: &Socket, v6: bool) -> std::io::Result<()> {
    if v6 {
        socket.set_unicast_hops_v6(MULTIHOP_TTL)
    } else {
        socket.set_ttl_v4(MULTIHOP_TTL)
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
