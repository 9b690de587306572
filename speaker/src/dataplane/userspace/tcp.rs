//! TCP forwarding of one virtual server: accept, pick a real server, connect, copy both ways.

use super::VirtualServerState;
use ferrolb_shared::ipvs::scheduler::Flow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// How long to wait for a real server to accept before trying another.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Copy buffer per direction: large buffers keep bulk transfers near the link's speed.
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
                let (mut c, mut u) = (client, upstream);
                let _ =
                    tokio::io::copy_bidirectional_with_sizes(&mut c, &mut u, BUFFER, BUFFER).await;
                state.closed(&id);
                return;
            }
            Ok(Err(e)) => tracing::debug!(vs = %state.key, %target, "connect failed: {e}"),
            Err(_) => tracing::debug!(vs = %state.key, %target, "connect timed out"),
        }
        state.closed(&id);
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
