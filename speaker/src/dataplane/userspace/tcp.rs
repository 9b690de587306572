//! TCP forwarding of one virtual server: accept, pick a real server, connect, copy both ways.
//!
//! Per connection the proxy allocates one task and, while it copies through userspace, one
//! buffer per direction; a direction that has moved [`SPLICE_AFTER`] bytes goes on with
//! splice(2) through a pipe of its own, so bulk data is never copied into the process. Short
//! exchanges (a request and its answer) never pay for the pipe.

use super::VirtualServerState;
use ferrolb_shared::ipvs::scheduler::Flow;
use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How long to wait for a real server to accept before trying another.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Copy buffer per direction: it starts small, so a short connection costs one small
/// allocation, and doubles whenever a read fills it, up to the largest size, so bulk
/// transfers run with few system calls.
const FIRST_BUFFER: usize = 16 * 1024;
const BUFFER: usize = 256 * 1024;
/// Real servers tried for one client connection before giving up.
const ATTEMPTS: usize = 3;
/// Bytes one direction copies through userspace before it moves to splice(2).
const SPLICE_AFTER: usize = 256 * 1024;
/// The most one splice moves: a pipe's default capacity (16 pages).
const SPLICE_CHUNK: usize = 64 * 1024;

/// Accept connections until the task is aborted. Several of these may share one listener
/// (one per worker thread), so accepting does not wait behind one thread.
pub async fn serve(listener: Arc<TcpListener>, state: Arc<VirtualServerState>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(vs = %state.key, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move { forward(client, peer, state).await });
    }
}

async fn forward(client: TcpStream, peer: SocketAddr, state: Arc<VirtualServerState>) {
    // TCP_NODELAY is inherited from the listener.
    let flow = Flow {
        src: unmap(peer.ip()),
        dst: state.key.addr,
    };
    for _ in 0..ATTEMPTS {
        let Some((id, target)) = state.pick(Instant::now(), &flow) else {
            tracing::debug!(vs = %state.key, client = %peer, "no real server");
            return;
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                let mut client = client;
                let (cr, cw) = client.split();
                let (ur, uw) = upstream.split();
                // Until both sides have closed; an error on either drops both at once.
                let _ = tokio::try_join!(pipe(cr, uw), pipe(ur, cw));
                state.closed(&id);
                return;
            }
            Ok(Err(e)) => tracing::debug!(vs = %state.key, %target, "connect failed: {e}"),
            Err(_) => tracing::debug!(vs = %state.key, %target, "connect timed out"),
        }
        state.closed(&id);
    }
}

/// Copy one direction until end of stream, then pass the end on (half-close): through a
/// buffer at first, then, once the direction has moved [`SPLICE_AFTER`] bytes, by splice(2)
/// (unless no pipe can be had: then through the buffer to the end).
async fn pipe(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(FIRST_BUFFER);
    let mut copied = 0;
    // Asked for once, when the direction turns bulk.
    let mut pipe_tried = false;
    loop {
        if copied >= SPLICE_AFTER && !pipe_tried {
            pipe_tried = true;
            if let Ok(pipe) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC) {
                drop(buf);
                return splice_all(from.as_ref(), to.as_ref(), pipe).await;
            }
        }
        buf.clear();
        // Reads into the spare capacity: nothing to zero, nothing allocated per read.
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf).await?;
        copied += n;
        if n == buf.capacity() && n < BUFFER {
            // The read filled it: a bulk transfer.
            buf = Vec::with_capacity((2 * n).min(BUFFER));
        }
    }
}

/// Moves `from`'s data to `to` through the pipe `(out, into)` until end of stream, then
/// half-closes `to`. The pipe is emptied after every read, so a read always has room.
async fn splice_all(
    from: &TcpStream,
    to: &TcpStream,
    (out, into): (OwnedFd, OwnedFd),
) -> io::Result<()> {
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    loop {
        let n = from
            .async_io(Interest::READABLE, || {
                Ok(splice(from, None, &into, None, SPLICE_CHUNK, flags)?)
            })
            .await?;
        if n == 0 {
            return socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write);
        }
        let mut left = n;
        while left > 0 {
            let sent = to
                .async_io(Interest::WRITABLE, || {
                    Ok(splice(&out, None, to, None, left, flags)?)
                })
                .await?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= sent;
        }
    }
}

/// A v4 client seen on a dual-stack socket arrives as `::ffff:a.b.c.d`.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}
