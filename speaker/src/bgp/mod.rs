//! BGP mode: every eligible node advertises the LoadBalancer IPs to the configured routers,
//! which spread traffic with ECMP. What to advertise is pure
//! ([`ferrolb_shared::bgp::advertise`]); each peering is the sans-IO session of
//! [`ferrolb_shared::bgp::session`], driven by one task per peer ([`peer`]).
//!
//! ```text
//!  SnapshotReceiver ──▶ top-level loop ── advertise() per snapshot ──┬─PeerCmd::Routes──▶ peer tasks
//!                       (this file)      start / stop peer tasks    │   (peer.rs, conn.rs)
//!  listeners :179 ──(stream, from)──▶ by peer address ──────────────┘─PeerCmd::Accepted─▶
//!  BFD :3784 (bfd.rs, shared) ──packets by source address──▶ the peer task's BFD session
//! ```
//!
//! With a `bfdProfile`, a peer's task also runs a BFD session from its first connection on;
//! when BFD goes from Up to Down the BGP session is torn down at once (Cease, BFD Down).
//!
//! With a `password` (or `passwordSecret`), a peer's connections are signed with TCP-MD5
//! (`md5.rs`): the outbound socket gets the key before it connects, every listener gets it
//! for the peer's address.
//!
//! Stopping ([`Bgp::stop`]): [`StopKind::Clean`] ceases every session (NOTIFICATION Cease,
//! routers withdraw our routes at once); [`StopKind::Keep`] (a restart follows) only closes
//! the TCP connections (after a BFD AdminDown, which is no failure), which a router that
//! negotiated graceful restart treats as our restart: it keeps our routes as stale until the
//! next speaker's End-of-RIB (RFC 4724 §4.2).
//!
//! A peer's task is restarted when its `BGPPeer` changes (a new session: the router sees a
//! Cease and a fresh OPEN); only the routes change otherwise. Nothing listens on port 179 and
//! nothing connects while no `BGPPeer` selects this node, so a speaker without BGP
//! configuration opens no socket at all.

mod bfd;
mod conn;
mod md5;
pub mod peer;
mod routes;
pub mod sessions;
pub mod status;

use crate::metrics::Metrics;
use crate::snapshots::SnapshotReceiver;
use crate::status::StatusTarget;
use ferrolb_cluster::task::AbortOnDrop;
use ferrolb_shared::bfd::session::{SessionConfig as BfdConfig, minimum_ttl};
use ferrolb_shared::bgp::advertise::{PeerPlan, advertise, is_ibgp};
use ferrolb_shared::snapshot::Snapshot;
use ferrolb_shared::stop::StopKind;
use peer::{PeerCmd, PeerHandle, Routes};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// The BGP port (RFC 4271).
pub const BGP_PORT: u16 = 179;

/// BGP settings (speaker flags).
#[derive(Clone, Debug)]
pub struct BgpSettings {
    pub node: String,
    pub lb_class: Option<String>,
    /// The port to listen on for peers that connect to us.
    pub listen_port: u16,
    /// Where the BGP status goes ([`status`]): `ServiceBGPStatus` objects or `bgp.yaml`;
    /// and the session states ([`sessions`]): `BGPSessionState` objects or `sessions.yaml`.
    pub status: StatusTarget,
    /// Kubernetes mode: the speaker's namespace, where its `BGPSessionState`s go.
    pub namespace: String,
}

impl BgpSettings {
    pub fn new(node: impl Into<String>) -> Self {
        BgpSettings {
            node: node.into(),
            lb_class: None,
            listen_port: BGP_PORT,
            status: StatusTarget::None,
            namespace: "standalone".into(),
        }
    }
}

/// The running BGP loop.
pub struct Bgp {
    stop: watch::Sender<Option<StopKind>>,
    task: JoinHandle<()>,
}

impl Bgp {
    /// Cease every session ([`StopKind::Clean`]) or just close them ([`StopKind::Keep`]),
    /// then return.
    pub async fn stop(mut self, kind: StopKind) {
        let _ = self.stop.send(Some(kind));
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Bgp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn spawn(settings: BgpSettings, snapshots: SnapshotReceiver, metrics: Arc<Metrics>) -> Bgp {
    let (stop, stopped) = watch::channel(None);
    let task = tokio::spawn(
        run(settings, snapshots, metrics, stopped).instrument(tracing::info_span!("bgp")),
    );
    Bgp { stop, task }
}

struct State {
    settings: BgpSettings,
    metrics: Arc<Metrics>,
    peers: BTreeMap<String, PeerHandle>,
    /// BFD's shared receive port, bound once a peer asks for BFD.
    bfd_hub: bfd::Hub,
    listeners: BTreeMap<SocketAddr, Listener>,
    /// Bind failures already reported, so each is said once.
    listen_errors: BTreeSet<SocketAddr>,
    /// Unusable passwords already reported (peer, message), so each is said once.
    key_errors: BTreeMap<String, String>,
    accepted: mpsc::Sender<(TcpStream, SocketAddr)>,
    status: status::StatusSink,
    /// Where the peer tasks post their session state.
    sessions: sessions::Board,
}

async fn run(
    settings: BgpSettings,
    mut snapshots: SnapshotReceiver,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<Option<StopKind>>,
) {
    let (accepted, mut incoming) = mpsc::channel(16);
    let sessions = sessions::Board::default();
    let session_sink = sessions::start(
        &settings.status,
        &settings.node,
        &settings.namespace,
        &sessions,
    );
    let mut state = State {
        status: status::StatusSink::start(&settings.status, &settings.node),
        sessions,
        settings,
        bfd_hub: bfd::Hub::new(metrics.bfd_discarded.clone()),
        metrics,
        peers: BTreeMap::new(),
        listeners: BTreeMap::new(),
        listen_errors: BTreeSet::new(),
        key_errors: BTreeMap::new(),
        accepted,
    };
    loop {
        tokio::select! {
            s = snapshots.next() => match s {
                Some(s) => state.reconcile(&s),
                None => break,
            },
            Some((stream, from)) = incoming.recv() => state.dispatch(stream, from),
            _ = stopped.changed() => break,
        }
    }
    let cease = *stopped.borrow() != Some(StopKind::Keep);
    let peers = std::mem::take(&mut state.peers);
    for (_, handle) in peers {
        stop_peer(handle, false, cease).await;
    }
    session_sink.stop().await;
}

/// Stops a peer's task (a Cease sent when `cease`, else the connection just closed),
/// forgetting its metric series if the peer is gone.
async fn stop_peer(mut handle: PeerHandle, forget: bool, cease: bool) {
    let _ = handle.tx.send(PeerCmd::Stop { forget, cease });
    if tokio::time::timeout(Duration::from_secs(2), &mut handle.task)
        .await
        .is_err()
    {
        handle.task.abort();
    }
}

impl State {
    fn reconcile(&mut self, snapshot: &Snapshot) {
        let plans = advertise(
            snapshot,
            &self.settings.node,
            self.settings.lb_class.as_deref(),
        );
        let node_addresses = snapshot.node_view().addresses;
        let keys: BTreeMap<&String, Result<Option<md5::Key>, md5::KeyError>> = plans
            .iter()
            .map(|(name, p)| (name, md5::key_of(snapshot, &p.peer)))
            .collect();
        // Peers gone, or whose settings changed (a Secret's password too): a new session.
        let stale: Vec<String> = self
            .peers
            .iter()
            .filter(|(name, h)| {
                plans.get(*name).is_none_or(|p| {
                    p.peer != h.peer
                        || bfd_config(snapshot, p) != h.bfd
                        || keys.get(name).is_none_or(|k| *k != Ok(h.md5.clone()))
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(handle) = self.peers.remove(&name) {
                let gone = !plans.contains_key(&name);
                tracing::info!(peer = name, gone, "stopping the session");
                tokio::spawn(stop_peer(handle, gone, true));
            }
        }
        self.key_errors
            .retain(|name, _| keys.get(name).is_some_and(Result::is_err));
        for (name, plan) in &plans {
            if !self.peers.contains_key(name) {
                let md5 = match keys.get(name) {
                    Some(Ok(k)) => k.clone(),
                    Some(Err(e)) => {
                        // Connecting unsigned would only be refused: wait for a usable one.
                        let msg = e.to_string();
                        if self.key_errors.get(name) != Some(&msg) {
                            tracing::error!(peer = name, "not connecting: {msg}");
                            self.key_errors.insert(name.clone(), msg);
                        }
                        continue;
                    }
                    None => None,
                };
                let Some(router_id) = router_id(plan, &node_addresses) else {
                    tracing::error!(
                        peer = name,
                        "no router ID: set routerID, or give the Node an IPv4 address"
                    );
                    continue;
                };
                let Some(handle) = peer::spawn(
                    plan.peer.clone(),
                    router_id,
                    bfd_config(snapshot, plan),
                    md5,
                    self.bfd_hub.clone(),
                    self.metrics.clone(),
                    self.sessions.clone(),
                ) else {
                    continue;
                };
                tracing::info!(peer = name, %router_id, "starting the session");
                self.peers.insert(name.clone(), handle);
            }
            if let Some(handle) = self.peers.get(name) {
                let routes = Routes {
                    routes: plan
                        .routes
                        .iter()
                        .map(|(p, r)| (*p, r.attributes.clone()))
                        .collect(),
                    node_addresses: node_addresses.clone(),
                };
                let _ = handle.tx.send(PeerCmd::Routes(Arc::new(routes)));
            }
        }
        self.listen(&plans, &node_addresses);
        // After the routes went out: the status must never delay them.
        self.status.report(snapshot, &plans);
    }

    /// Listens on port 179 of the Node's addresses and the peers' source addresses while
    /// there are peers; closes the listeners when there are none.
    fn listen(&mut self, plans: &BTreeMap<String, PeerPlan>, node_addresses: &[IpAddr]) {
        let port = self.settings.listen_port;
        let mut want: BTreeSet<SocketAddr> = BTreeSet::new();
        if !plans.is_empty() {
            want.extend(node_addresses.iter().map(|a| SocketAddr::new(*a, port)));
            want.extend(
                plans
                    .values()
                    .filter_map(|p| p.peer.source_address)
                    .map(|a| SocketAddr::new(a, port)),
            );
        }
        // The TCP-MD5 keys of the peers with a password, for every listener: a peer may
        // connect to any of our addresses.
        let keys: BTreeMap<IpAddr, md5::Key> = self
            .peers
            .values()
            .filter_map(|h| Some((h.peer.peer_address?.to_canonical(), h.md5.clone()?)))
            .collect();
        self.listeners.retain(|addr, _| want.contains(addr));
        for addr in want {
            if let Some(l) = self.listeners.get_mut(&addr) {
                md5::sync(&*l.socket, addr.is_ipv4(), &mut l.keys, &keys);
                continue;
            }
            match bind(addr, &keys) {
                Ok(listener) => {
                    tracing::info!(%addr, "listening for BGP peers");
                    self.listen_errors.remove(&addr);
                    self.listeners
                        .insert(addr, listener.spawn(self.accepted.clone()));
                }
                Err(e) => {
                    if self.listen_errors.insert(addr) {
                        tracing::warn!(%addr, "cannot listen for BGP peers ({e}); connecting out only");
                    }
                }
            }
        }
    }

    /// Hands an inbound connection to the peer with that address; refuses strangers.
    fn dispatch(&mut self, stream: TcpStream, from: SocketAddr) {
        let ip = from.ip().to_canonical();
        match self
            .peers
            .values()
            .find(|h| h.peer.peer_address.map(|a| a.to_canonical()) == Some(ip))
        {
            Some(handle) => {
                let _ = handle.tx.send(PeerCmd::Accepted(stream));
            }
            None => tracing::debug!(%from, "refused a BGP connection from an unknown address"),
        }
    }
}

/// A listening socket on port 179, the TCP-MD5 keys it carries, and its accept loop.
struct Listener {
    socket: Arc<TcpListener>,
    keys: BTreeMap<IpAddr, md5::Key>,
    /// Aborted with the listener.
    _task: Option<AbortOnDrop<()>>,
}

impl Listener {
    fn spawn(mut self, tx: mpsc::Sender<(TcpStream, SocketAddr)>) -> Listener {
        let task = tokio::spawn(accept_loop(self.socket.clone(), tx).in_current_span());
        self._task = Some(AbortOnDrop(task));
        self
    }
}

/// Binds `addr` with the `keys` set before `listen`, so no unsigned connection from a peer
/// with a password slips in between.
fn bind(addr: SocketAddr, keys: &BTreeMap<IpAddr, md5::Key>) -> std::io::Result<Listener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    // The SYN-ACK leaves before any peer task sees the connection, with the listener's TTL:
    // 255, so a router enforcing GTSM on a multi-hop session accepts it. The peer's task then
    // sets the connection's own TTL (1 for single-hop eBGP).
    conn::set_ttl(
        socket2::SockRef::from(&socket),
        addr.is_ipv6(),
        conn::MAX_TTL,
    )?;
    socket.bind(addr)?;
    let mut have = BTreeMap::new();
    md5::sync(&socket, addr.is_ipv4(), &mut have, keys);
    Ok(Listener {
        socket: Arc::new(socket.listen(16)?),
        keys: have,
        _task: None,
    })
}

async fn accept_loop(listener: Arc<TcpListener>, tx: mpsc::Sender<(TcpStream, SocketAddr)>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                if tx.send((stream, from)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accepting a BGP connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Removes and returns the timers whose deadline has passed.
fn take_due<T: Copy + Eq + std::hash::Hash>(timers: &mut HashMap<T, Instant>) -> Vec<T> {
    let now = Instant::now();
    let due: Vec<T> = timers
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(t, _)| *t)
        .collect();
    for t in &due {
        timers.remove(t);
    }
    due
}

/// The BFD settings of a peer's `bfdProfile`, if it names one that can drive a session.
fn bfd_config(snapshot: &Snapshot, plan: &PeerPlan) -> Option<bfd::Settings> {
    let name = plan.peer.spec.bfd_profile.as_ref()?;
    let profile = snapshot.config.as_ref()?.bfd_profiles.get(name)?;
    match BfdConfig::from_profile(profile) {
        Ok(session) => Some(bfd::Settings {
            session,
            ebgp_multihop: plan.peer.spec.ebgp_multi_hop == Some(true),
            ibgp: is_ibgp(&plan.peer),
            min_ttl: minimum_ttl(profile),
        }),
        Err(e) => {
            tracing::error!(peer = plan.peer.name, profile = name, "BFD is off: {e}");
            None
        }
    }
}

/// The BGP Identifier: `routerID`, else an IPv4 source address, else the Node's first IPv4
/// address.
fn router_id(plan: &PeerPlan, node_addresses: &[IpAddr]) -> Option<Ipv4Addr> {
    let v4 = |a: &IpAddr| match a.to_canonical() {
        IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    };
    plan.peer
        .router_id
        .or_else(|| plan.peer.source_address.as_ref().and_then(v4))
        .or_else(|| node_addresses.iter().find_map(v4))
}
