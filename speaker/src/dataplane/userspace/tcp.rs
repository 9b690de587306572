//! TCP forwarding of one virtual server: accept, pick a real server, connect, copy both ways.

use super::VirtualServerState;
use ferrolb_shared::ipvs::scheduler::Flow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
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

/// Accept connections until the listener's task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<VirtualServerState>) {
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
    let _ = client.set_nodelay(true);
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
            Ok(Ok(upstream)) => {
                let _ = upstream.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
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

/// Copy one direction until end of stream, then pass the end on (half-close).
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(FIRST_BUFFER);
    loop {
        buf.clear();
        // Reads into the spare capacity: nothing to zero, nothing allocated per read.
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf).await?;
        if n == buf.capacity() && n < BUFFER {
            // The read filled it: a bulk transfer.
            buf = Vec::with_capacity((2 * n).min(BUFFER));
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
