//! BGP daemons in lab hosts: the router's (BIRD, FRR or GoBGP, configured from the topology)
//! and peers a test starts in a node to prove the router works before the speaker speaks BGP.
//! Whatever the daemon, [`BgpDaemon::sessions`] and [`BgpDaemon::routes`] return the same
//! structured view.
//!
//! The router has one neighbor per node and address family (`node1_v4` over IPv4 carrying
//! IPv4 routes, `node1_v6` over IPv6 carrying IPv6 routes), accepts every route, advertises
//! none, and installs what it learns into its kernel table with ECMP across nodes, so clients
//! behind it really follow the routes. GoBGP installs nothing itself: the lab runs
//! `ferrolb-lab gobgp-sync` beside it, which mirrors gobgpd's multipath RIB into the kernel.

mod bird;
mod frr;
mod gobgp;
mod view;

pub use gobgp::sync_forever as gobgp_sync_forever;
pub use view::{Community, LargeCommunity, RoutePath, Session};

use super::error::{LabError, Result};
use super::host::Role;
use super::instance::Lab;
use super::plan;
use super::spec::RouterKind;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// The gRPC port gobgpd listens on, on its host's own loopback.
pub const GOBGP_API_PORT: u16 = 50051;

/// The hops a multi-hop session may span (BIRD and FRR enforce GTSM on it): the router
/// accepts segments whose TTL is at least 255 - 2 + 1 = 254, so the peer must send 255.
pub const MULTIHOP_HOPS: u8 = 2;

/// A BGP neighbor in a daemon's configuration.
#[derive(Clone, Debug)]
pub struct Neighbor {
    /// The protocol/session name (`node1_v4`, `router_v6`).
    pub name: String,
    /// Its address; the family decides which address family the session carries.
    pub addr: IpAddr,
    /// Its ASN.
    pub asn: u32,
}

/// A route a peer daemon advertises.
#[derive(Clone, Debug, Default)]
pub struct Announce {
    /// The prefix.
    pub prefix: IpNet,
    /// Standard communities to attach.
    pub communities: Vec<Community>,
    /// Large communities to attach.
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF to send (only meaningful over iBGP).
    pub local_pref: Option<u32>,
}

impl Announce {
    /// A plain announcement of `prefix`.
    pub fn prefix(prefix: &str) -> Announce {
        Announce {
            prefix: prefix.parse().expect("a valid prefix"),
            ..Default::default()
        }
    }
}

/// Everything a daemon configuration is generated from.
#[derive(Clone, Debug)]
pub struct BgpConfig {
    /// Local ASN.
    pub asn: u32,
    /// Router ID.
    pub router_id: Ipv4Addr,
    /// Neighbors.
    pub neighbors: Vec<Neighbor>,
    /// Routes to advertise (peers); the router advertises nothing.
    pub announce: Vec<Announce>,
    /// Router role: import every route, export none, install into the kernel with ECMP.
    pub install_routes: bool,
    /// Enable BFD on every session (BIRD and FRR).
    pub bfd: bool,
    /// TCP-MD5 password of every session.
    pub password: Option<String>,
    /// Graceful restart (RFC 4724) on every session: the router keeps a restarting
    /// neighbor's routes as stale until it is back and has sent End-of-RIB.
    pub graceful_restart: bool,
    /// Multi-hop sessions from this address (one not on the nodes' link, such as a loopback)
    /// to the neighbors of its family (BIRD and FRR), with GTSM ([`MULTIHOP_HOPS`]): they
    /// only come up when the neighbor sends TTL 255. The others stay single-hop.
    pub multihop_source: Option<IpAddr>,
}

/// A BGP daemon running in a lab host.
#[derive(Clone, Debug)]
pub struct BgpDaemon {
    /// Which daemon.
    pub kind: RouterKind,
    /// The host it runs in.
    pub host: String,
    /// The host's network namespace.
    pub netns: String,
    /// Its configuration and control sockets.
    pub dir: PathBuf,
    /// The lab processes making it up.
    pub processes: Vec<String>,
    /// The configuration it was started with.
    pub config: BgpConfig,
}

impl BgpDaemon {
    /// Its BGP sessions and their states.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        match self.kind {
            RouterKind::Bird => bird::sessions(self),
            RouterKind::Frr => frr::sessions(self),
            RouterKind::Gobgp => gobgp::sessions(self),
        }
    }

    /// Every route it received from its neighbors, one entry per path.
    pub fn routes(&self) -> Result<Vec<RoutePath>> {
        match self.kind {
            RouterKind::Bird => bird::routes(self),
            RouterKind::Frr => frr::routes(self),
            RouterKind::Gobgp => gobgp::routes(self),
        }
    }

    /// The received paths for one prefix.
    pub fn routes_for(&self, prefix: &str) -> Result<Vec<RoutePath>> {
        let want: IpNet = prefix
            .parse()
            .map_err(|e| LabError::Spec(format!("{prefix:?}: {e}")))?;
        Ok(self
            .routes()?
            .into_iter()
            .filter(|r| r.prefix == want)
            .collect())
    }

    /// Wait until the sessions named `names` are all established.
    pub fn wait_established(&self, names: &[&str], limit: Duration) -> Result<Vec<Session>> {
        super::wait::wait_until(
            &format!(
                "{} sessions {names:?} on {} to be established",
                self.kind, self.host
            ),
            limit,
            || {
                let s = self.sessions()?;
                let ok = names
                    .iter()
                    .all(|n| s.iter().any(|x| x.name == *n && x.established));
                Ok(if ok { Ok(s) } else { Err(format!("{s:?}")) })
            },
        )
    }

    /// Wait until the paths for `prefix` come from exactly the next hops `want` (sorted).
    pub fn wait_route(
        &self,
        prefix: &str,
        want: &[IpAddr],
        limit: Duration,
    ) -> Result<Vec<RoutePath>> {
        let mut want = want.to_vec();
        want.sort();
        super::wait::wait_until(
            &format!(
                "{} on {} to have {prefix} via {want:?}",
                self.kind, self.host
            ),
            limit,
            || {
                let paths = self.routes_for(prefix)?;
                let mut hops: Vec<IpAddr> = paths.iter().filter_map(|p| p.next_hop).collect();
                hops.sort();
                Ok(if hops == want {
                    Ok(paths)
                } else {
                    Err(format!("{paths:?}"))
                })
            },
        )
    }
}

fn start(lab: &Lab, host: &str, kind: RouterKind, config: BgpConfig) -> Result<BgpDaemon> {
    let h = lab.host(host)?;
    let dir = lab.dir().join(format!("{}-{host}", kind.name()));
    std::fs::create_dir_all(&dir).map_err(super::error::io(&dir))?;
    let mut d = BgpDaemon {
        kind,
        host: h.name.clone(),
        netns: h.netns.clone(),
        dir,
        processes: Vec::new(),
        config,
    };
    match kind {
        RouterKind::Bird => bird::start(lab, &mut d)?,
        RouterKind::Frr => frr::start(lab, &mut d)?,
        RouterKind::Gobgp => gobgp::start(lab, &mut d)?,
    }
    Ok(d)
}

/// The router's daemon, with a neighbor per node and family.
pub(crate) fn start_router(lab: &Lab, kind: RouterKind) -> Result<BgpDaemon> {
    let mut neighbors = Vec::new();
    for n in lab.nodes() {
        for (v6, fam) in [(false, "v4"), (true, "v6")] {
            if let Some(addr) = n.addr(v6) {
                neighbors.push(Neighbor {
                    name: format!("{}_{fam}", n.name),
                    addr,
                    asn: lab.spec().node_asn,
                });
            }
        }
    }
    let config = BgpConfig {
        asn: lab.spec().router_asn,
        router_id: plan::router_lan().0,
        neighbors,
        announce: Vec::new(),
        install_routes: true,
        bfd: lab.spec().bfd,
        password: None,
        graceful_restart: false,
        multihop_source: None,
    };
    start(lab, "router", kind, config)
}

impl Lab {
    /// Restart the router's daemon with its configuration changed by `change` (a password,
    /// graceful restart). Meant for before the speakers start: the routes it had are lost.
    pub fn reconfigure_router(&mut self, change: impl FnOnce(&mut BgpConfig)) -> Result<()> {
        let old = self.router.take().ok_or_else(|| LabError::Unknown {
            kind: "router daemon",
            name: "router".into(),
            known: "none: the spec has router: None".into(),
        })?;
        for p in old.processes.iter().rev() {
            self.kill_process(p)?;
            self.forget_process(p)?;
        }
        // Sockets of the killed daemons: FRR waits for a new zserv.api to know zebra is up.
        for sock in ["zserv.api", "bird.ctl"] {
            let _ = std::fs::remove_file(old.dir.join(sock));
        }
        let mut config = old.config;
        change(&mut config);
        self.router = Some(start(self, "router", old.kind, config)?);
        Ok(())
    }

    /// Start a BGP daemon of `kind` in node `node` (`node1`, ...), peering with the router
    /// over each family (sessions `router_v4`, `router_v6`) and advertising `announce`. Its
    /// ASN is the spec's node ASN. Used to prove the router before the speaker speaks BGP.
    pub fn start_bgp_peer(
        &self,
        node: &str,
        kind: RouterKind,
        announce: Vec<Announce>,
    ) -> Result<BgpDaemon> {
        let h = self.host(node)?;
        if !matches!(h.role, Role::Node(_)) {
            return Err(LabError::Spec(format!("{node} is not a node")));
        }
        for (tool, package) in super::instance::router_tools(kind) {
            super::cmd::require_tool(tool, package)?;
        }
        let (r4, r6) = plan::router_lan();
        let mut neighbors = vec![Neighbor {
            name: "router_v4".into(),
            addr: r4.into(),
            asn: self.spec().router_asn,
        }];
        if self.spec().dual_stack {
            neighbors.push(Neighbor {
                name: "router_v6".into(),
                addr: r6.into(),
                asn: self.spec().router_asn,
            });
        }
        let config = BgpConfig {
            asn: self.spec().node_asn,
            router_id: h.ipv4.expect("nodes have IPv4"),
            neighbors,
            announce,
            install_routes: false,
            bfd: false,
            password: None,
            graceful_restart: false,
            multihop_source: None,
        };
        start(self, node, kind, config)
    }
}
