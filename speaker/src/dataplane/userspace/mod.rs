//! The userspace data path: a tokio TCP and UDP proxy per virtual server, reached through an
//! nftables redirect to its local port. It runs every IPVS scheduler, including the
//! least-connection family that needs live connection counts, and is the reference the kernel
//! path is checked against.
//!
//! ```text
//!  client ──▶ VIP:port ──(nft redirect)──▶ [::]:proxy-port ──▶ Balancer::pick ──▶ pod:port
//! ```
//!
//! The proxy opens its own connection to the real server, so the pod sees the node's address:
//! `externalTrafficPolicy: Local` still picks only local endpoints, but the client address is
//! not preserved on this path (use the nftables path for that).

mod tcp;
mod udp;

use ferrolb_shared::ipvs::balancer::Balancer;
use ferrolb_shared::ipvs::model::{Proto, Table, VirtualServer, VsKey};
use ferrolb_shared::ipvs::scheduler::Flow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Local ports the proxy listens on, one per virtual server: below the NodePort range
/// (30000-32767) and the kernel's ephemeral range (32768-60999 by default), so the listeners
/// neither take ports the node's outgoing connections need nor collide with NodePorts.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 20000..=29999;
pub use udp::IDLE_TIMEOUT as DEFAULT_UDP_IDLE_TIMEOUT;

/// What a listener task shares with the manager.
pub struct VirtualServerState {
    pub key: VsKey,
    balancer: Mutex<Balancer>,
    udp_idle_timeout: Duration,
    /// Connections (TCP) or flows (UDP) refused because nothing could take them.
    pub dropped: AtomicU64,
}

impl VirtualServerState {
    fn pick(&self, now: Instant, flow: &Flow) -> Option<(String, SocketAddr)> {
        let mut b = self.balancer.lock().unwrap_or_else(|e| e.into_inner());
        match b.pick(now, flow) {
            // The id is copied rather than formatted again from the address.
            Some((idx, rs)) => {
                let target = SocketAddr::new(rs.addr, rs.port);
                Some((b.id(idx).to_owned(), target))
            }
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn closed(&self, id: &str) {
        self.balancer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed(id);
    }

    fn has(&self, id: &str) -> bool {
        self.balancer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .has(id)
    }

    fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Active connections per real server id.
    pub fn active(&self) -> Vec<(String, u32)> {
        self.balancer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active()
    }
}

struct Listener {
    port: u16,
    state: Arc<VirtualServerState>,
    /// One per worker thread for TCP (sharing the socket), one for UDP.
    tasks: Vec<JoinHandle<()>>,
}

/// A listener taken out of the set stops (established connections end with their tasks).
impl Drop for Listener {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Errors starting a listener.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{vs}: no free proxy port left in {first}-{last}")]
    NoPort { vs: VsKey, first: u16, last: u16 },
    #[error("{vs}: {source}")]
    Scheduler {
        vs: VsKey,
        source: ferrolb_shared::ipvs::maglev::MaglevError,
    },
}

/// The set of running listeners, kept in step with the virtual server table.
pub struct UserspaceProxy {
    listeners: BTreeMap<VsKey, Listener>,
    ports: RangeInclusive<u16>,
    /// Ports the listeners hold, and where the search for a free one starts: starting
    /// 10,000 listeners must not rescan the ports of all the others each time.
    used: BTreeSet<u16>,
    next_port: u16,
    udp_idle_timeout: Duration,
}

impl UserspaceProxy {
    pub fn new(ports: RangeInclusive<u16>, udp_idle_timeout: Duration) -> Self {
        UserspaceProxy {
            listeners: BTreeMap::new(),
            next_port: *ports.start(),
            ports,
            used: BTreeSet::new(),
            udp_idle_timeout,
        }
    }

    /// Bring the listeners in line with `table`: start new ones, update the real servers of
    /// existing ones in place (their connections go on), stop those that left. `touched`
    /// names the virtual servers that may have changed (`None`: any). Returns the port of
    /// every virtual server that has a listener, for the nftables redirect.
    pub async fn apply(
        &mut self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
    ) -> (BTreeMap<VsKey, u16>, Vec<ProxyError>) {
        let mut errors = Vec::new();
        // After one fruitless pass over the whole range, the rest fail at once.
        let mut out_of_ports = false;
        let gone: Vec<VsKey> = match touched {
            Some(keys) => keys
                .iter()
                .filter(|k| self.listeners.contains_key(*k))
                .filter(|k| !table.servers.get(*k).is_some_and(proxied))
                .copied()
                .collect(),
            None => self
                .listeners
                .keys()
                .filter(|k| !table.servers.get(*k).is_some_and(proxied))
                .copied()
                .collect(),
        };
        for key in gone {
            if let Some(l) = self.listeners.remove(&key) {
                self.used.remove(&l.port);
            }
        }
        let servers: Vec<&VirtualServer> = match touched {
            Some(keys) => keys.iter().filter_map(|k| table.servers.get(k)).collect(),
            None => table.servers.values().collect(),
        };
        for vs in servers.into_iter().filter(|v| proxied(v)) {
            let result = match self.listeners.get(&vs.key) {
                Some(l) => {
                    let mut b = l.state.balancer.lock().unwrap_or_else(|e| e.into_inner());
                    b.update(vs)
                        .map_err(|source| ProxyError::Scheduler { vs: vs.key, source })
                }
                None if out_of_ports => Err(self.no_port(vs.key)),
                None => {
                    let started = self.start(vs).await;
                    out_of_ports = matches!(started, Err(ProxyError::NoPort { .. }));
                    started
                }
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        (
            self.listeners.iter().map(|(k, l)| (*k, l.port)).collect(),
            errors,
        )
    }

    /// The live state of each virtual server, for metrics and tests.
    pub fn states(&self) -> Vec<Arc<VirtualServerState>> {
        self.listeners.values().map(|l| l.state.clone()).collect()
    }

    /// Stop every listener (established connections end with their tasks).
    pub fn shutdown(&mut self) {
        self.used.clear();
        self.listeners.clear();
    }

    async fn start(&mut self, vs: &VirtualServer) -> Result<(), ProxyError> {
        let balancer =
            Balancer::new(vs).map_err(|source| ProxyError::Scheduler { vs: vs.key, source })?;
        let state = Arc::new(VirtualServerState {
            key: vs.key,
            balancer: Mutex::new(balancer),
            udp_idle_timeout: self.udp_idle_timeout,
            dropped: AtomicU64::new(0),
        });
        let (first, last) = (*self.ports.start(), *self.ports.end());
        // From the cursor to the end of the range, then from its start to the cursor.
        for port in (self.next_port..=last).chain(first..self.next_port) {
            if self.used.contains(&port) {
                continue;
            }
            // Taken by someone else or not, the next search starts after it.
            self.next_port = if port == last { first } else { port + 1 };
            // One dual-stack socket on [::] takes both IPv4 (as mapped addresses) and IPv6.
            let addr = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
            let tasks = match vs.key.proto {
                Proto::Tcp => match TcpListener::bind(addr).await {
                    Ok(l) => {
                        // Accepted connections inherit TCP_NODELAY: one system call per
                        // connection fewer.
                        let _ = socket2::SockRef::from(&l).set_tcp_nodelay(true);
                        let l = Arc::new(l);
                        (0..accept_tasks())
                            .map(|_| tokio::spawn(tcp::serve(l.clone(), state.clone())))
                            .collect()
                    }
                    Err(_) => continue,
                },
                Proto::Udp => match UdpSocket::bind(addr).await {
                    Ok(s) => vec![tokio::spawn(udp::serve(s, state.clone()))],
                    Err(_) => continue,
                },
                Proto::Sctp => return Ok(()),
            };
            tracing::debug!(vs = %vs.key, port, "userspace listener started");
            self.used.insert(port);
            self.listeners
                .insert(vs.key, Listener { port, state, tasks });
            return Ok(());
        }
        Err(self.no_port(vs.key))
    }

    fn no_port(&self, vs: VsKey) -> ProxyError {
        ProxyError::NoPort {
            vs,
            first: *self.ports.start(),
            last: *self.ports.end(),
        }
    }
}

impl Drop for UserspaceProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepting tasks per TCP listener: one per core (the runtime's worker threads), at most 4.
/// Asked once: the answer reads cgroup files, and 10,000 listeners start at once.
fn accept_tasks() -> usize {
    static TASKS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *TASKS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// Virtual servers the proxy listens for: not dropping, and TCP or UDP (the proxy has no
/// SCTP).
fn proxied(vs: &VirtualServer) -> bool {
    !vs.drop && vs.key.proto != Proto::Sctp
}
