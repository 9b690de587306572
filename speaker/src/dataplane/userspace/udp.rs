//! UDP forwarding of one virtual server: a flow per client address, each with its own
//! upstream socket to the real server picked for it, forgotten after an idle timeout.

use super::VirtualServerState;
use super::tcp::unmap;
use ferrolb_shared::ipvs::scheduler::Flow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Flows idle this long are closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many flows per virtual server: a flood of spoofed sources cannot exhaust
/// the speaker's sockets. New flows beyond it are dropped until old ones expire.
pub const MAX_FLOWS: usize = 16_384;
const DATAGRAM: usize = 65_536;

struct UdpFlow {
    upstream: Arc<UdpSocket>,
    real_server: String,
    last_seen: Instant,
    relay: JoinHandle<()>,
}

/// Relay datagrams until the task is aborted.
pub async fn serve(socket: UdpSocket, state: Arc<VirtualServerState>) {
    let socket = Arc::new(socket);
    let mut flows: HashMap<SocketAddr, UdpFlow> = HashMap::new();
    let mut buf = vec![0u8; DATAGRAM];
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((len, peer)) = received else { continue };
                let now = Instant::now();
                if !flows.contains_key(&peer) {
                    if flows.len() >= MAX_FLOWS {
                        state.dropped();
                        continue;
                    }
                    match open(&socket, peer, &state).await {
                        Some(flow) => { flows.insert(peer, flow); }
                        None => continue,
                    }
                }
                if let Some(flow) = flows.get_mut(&peer) {
                    flow.last_seen = now;
                    let _ = flow.upstream.send(&buf[..len]).await;
                }
            }
            _ = sweep.tick() => {
                let now = Instant::now();
                flows.retain(|_, f| {
                    // A flow ends when idle, when its relay died, or when its real server left
                    // the virtual server (so no datagram ever goes to a removed endpoint).
                    let live = now.duration_since(f.last_seen) < state.udp_idle_timeout
                        && !f.relay.is_finished()
                        && state.has(&f.real_server);
                    if !live {
                        f.relay.abort();
                        state.closed(&f.real_server);
                    }
                    live
                });
            }
        }
    }
}

/// A new flow: pick a real server, connect an upstream socket, relay its replies back.
async fn open(
    listener: &Arc<UdpSocket>,
    peer: SocketAddr,
    state: &Arc<VirtualServerState>,
) -> Option<UdpFlow> {
    let flow = Flow {
        src: unmap(peer.ip()),
        dst: state.key.addr,
    };
    let (id, target) = state.pick(Instant::now(), &flow)?;
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let upstream = match UdpSocket::bind(bind).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(vs = %state.key, "cannot open an upstream socket: {e}");
            state.closed(&id);
            return None;
        }
    };
    if upstream.connect(target).await.is_err() {
        state.closed(&id);
        return None;
    }
    let upstream = Arc::new(upstream);
    let (up, down) = (upstream.clone(), listener.clone());
    let relay = tokio::spawn(async move {
        let mut buf = vec![0u8; DATAGRAM];
        while let Ok(len) = up.recv(&mut buf).await {
            if down.send_to(&buf[..len], peer).await.is_err() {
                break;
            }
        }
    });
    Some(UdpFlow {
        upstream,
        real_server: id,
        last_seen: Instant::now(),
        relay,
    })
}
