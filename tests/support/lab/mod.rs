//! # The lab: a whole bare-metal cluster in network namespaces
//!
//! Every capability that crosses a network (forwarding, layer 2, BGP, failover) is proven here,
//! on one machine: the lab builds a small data centre out of network namespaces ("hosts")
//! joined by veth links and Linux bridges, runs real BGP daemons and real FerroLB processes in
//! them, and tears it all down again. End-to-end tests, benchmarks and the demo
//! (`examples/lab/demo.sh`) all use it.
//!
//! ## Topology
//!
//! ```text
//!                      ext1  10.200.0.101  fd00:200::101      (external client)
//!                        │ eth0
//!            ════════════╪═══════════ br-ext ═════      ┐
//!                        │ eth1  10.200.0.1  fd00:200::1  │ the bridges live in the
//!                      router   BIRD | FRR | GoBGP, AS 64500,  │ switch host "lan"
//!                        │      ECMP routes into its kernel    │
//!                        │ eth0  10.100.0.1  fd00:100::1  │
//!   ═══════╤═════════════╧══════╤═══ br-lan ═══╤═══════════╤══ ┘
//!          │ eth0               │ eth0         │ eth0       │ eth0
//!        node1 .11 / ::11     node2 .12     node3 .13    client1 .101 / ::101
//!        speaker@node1        speaker@...   speaker@...  (LAN client)
//!          │ br-pod 10.244.1.1 / fd00:244:1::1
//!          │ eth0
//!        node1-pod1 10.244.1.11 / fd00:244:1::11   echo server (TCP 7000, UDP 7000, HTTP 8080)
//!
//!        ctl: the controller (only a loopback; its metrics port is its own)
//! ```
//!
//! Nodes route each other's pod CIDRs over the LAN (`10.244.j.0/24 via node j`), as a
//! host-gateway CNI would; LAN clients reach pods through the pod's node and everything else
//! through the router; the router knows the pod CIDRs and learns LoadBalancer routes over BGP;
//! the external client and pods use a default gateway. IPv4 and IPv6 on every link (unless
//! `dual_stack: false`), DAD off, forwarding on in the router and nodes, no NAT anywhere: a
//! pod sees the real client address. Pod ports on `br-pod` are in hairpin mode, as a CNI
//! bridge plugin sets them, so a pod can reach itself through a Service.
//!
//! ## Address plan
//!
//! | what | IPv4 | IPv6 |
//! |---|---|---|
//! | LAN (`br-lan`) | 10.100.0.0/24 | fd00:100::/64 |
//! | router on the LAN / outside | 10.100.0.1 / 10.200.0.1 | fd00:100::1 / fd00:200::1 |
//! | node *i* (1-based) | 10.100.0.(10+*i*) | fd00:100::(10+*i*) |
//! | LAN client *j* | 10.100.0.(100+*j*) | fd00:100::(100+*j*) |
//! | external network (`br-ext`), external client *j* | 10.200.0.0/24, .(100+*j*) | fd00:200::/64, ::(100+*j*) |
//! | pod CIDR of node *i* (`br-pod`, gateway .1 / ::1) | 10.244.*i*.0/24 | fd00:244:*i*::/64 |
//! | pod *k* of node *i* | 10.244.*i*.(10+*k*) | fd00:244:*i*::(10+*k*) |
//! | ClusterIP range (for the forwarding layer) | 10.96.0.0/16 | fd00:96::/112 |
//! | layer-2 LoadBalancer pool (on the LAN) | 10.100.0.200-10.100.0.250 | fd00:100::200-fd00:100::250 |
//! | BGP LoadBalancer pool (routed) | 10.250.0.0/24 | fd00:250::/120 |
//! | BGP | router AS 64500 | nodes AS 64512 (eBGP; equal ASNs give iBGP) |
//!
//! The IPv6 host part repeats the IPv4 last octet's digits (node1: 10.100.0.11 and
//! fd00:100::11). Constants and functions for all of it are in [`plan`].
//!
//! ## Names and safety
//!
//! Each lab has a prefix `flb<owner pid in base 36>-<counter>`; host *h* is the network
//! namespace `<prefix>-<h>`, and the lab's files (daemon configs and sockets, logs, the manifest
//! directory) are in `$TMPDIR/<prefix>/`. Every veth pair is created inside a lab namespace
//! with its peer placed straight into another one (`ip -n A link add eth0 type veth peer name
//! B netns C`), so no link ever exists in the root namespace, and every process runs through
//! `ip netns exec`. Link names (`eth0`, `br-lan`, the switch port named after its host) are
//! scoped by their namespace. Teardown kills every process in the lab's namespaces (SIGTERM,
//! then SIGKILL), deletes the namespaces (which removes their links) and the directory, and
//! checks that nothing is left. It runs when the test calls [`Lab::down`], when a `Lab` is
//! dropped (also while a test panics), and on SIGINT/SIGTERM: the first lab installs a handler
//! that tears down every live lab of the process and exits with 128+signal. A new lab first
//! sweeps leftovers of labs whose owner process is dead (a SIGKILLed run), and nothing else:
//! labs of tests running in parallel, in this process or others, are never touched.
//!
//! ## In a test
//!
//! ```no_run
//! use ferrolb_e2e::lab::{Lab, LabSpec, Proto, RouterKind};
//! # fn main() -> anyhow::Result<()> {
//! let lab = Lab::up(LabSpec::default().router(Some(RouterKind::Frr)))?; // 3 nodes, dual-stack
//! lab.start_controller()?;                        // in host ctl, on lab.manifests_dir()
//! lab.start_speakers()?;                          // speaker@node1..3
//! lab.write_manifest("pools.yaml", "...")?;      // the test writes the standalone directory
//! let ips = lab.wait_service_ips("default", "web", std::time::Duration::from_secs(10))?;
//! let answer = lab.probe("ext1", Proto::Http, ips[0], 80)?; // which pod, which client address
//! let sessions = lab.router()?.sessions()?;       // the router's view, whatever the daemon
//! lab.down()?;                                    // and assert nothing was left behind
//! # Ok(()) }
//! ```
//!
//! - Build: [`LabSpec`] (nodes, pods with their `app` label, LAN and external clients,
//!   dual-stack, router daemon, ASNs, BFD), [`Lab::up`], [`Lab::down`], [`Lab::host`],
//!   [`Lab::nodes`], [`Lab::pods`].
//! - Run things: [`Lab::exec`] (a command in a host), [`Lab::spawn`] (a long-running process
//!   `what@host` with its log), [`Lab::start_controller`], [`Lab::start_speaker`],
//!   [`Lab::start_speakers`]; [`Lab::kill_process`], [`Lab::stop_process`],
//!   [`Lab::pause_process`], [`Lab::resume_process`], [`Lab::log`], [`Lab::wait_log`].
//! - Cluster objects: [`Lab::write_manifest`], [`Lab::endpoint_slices_yaml`] (by app label),
//!   [`Lab::endpoint_slices_for`] (named pods; the lab writes its Node objects itself), [`Lab::service_ips`], [`Lab::wait_service_ips`].
//! - Talk to pods: [`Lab::probe`] / [`Lab::connect_tcp`] / [`Lab::send_udp`] /
//!   [`Lab::http_get`] return an [`Answer`] (pod name, client address seen); [`Lab::probe_as`]
//!   sends from a chosen client address (and port);
//!   [`Lab::http_request`] for any HTTP endpoint (metrics, health).
//! - Load: [`load`] opens many short connections, bounded in count and time (run in a host
//!   as `ferrolb-lab-echo cps ADDR PORT`), for the forwarding benchmark
//!   (`cargo bench -p ferrolb-e2e --bench forwarding`).
//! - Traffic under change: [`Lab::start_hold`] runs `ferrolb-lab-echo hold` in a host: long-lived
//!   TCP connections checked by echoing through them, and new connections in a bounded loop,
//!   every event stamped with the wall clock; [`Lab::hold_report`] reads the outcome
//!   ([`HoldReport`]).
//! - Look and disturb: [`Lab::neighbors`], [`Lab::kernel_next_hops`], [`Lab::capture`] /
//!   [`Lab::stop_capture`] (tcpdump), [`Lab::arping`], [`Lab::ndisc`], [`Lab::set_link`],
//!   [`Lab::mac`].
//! - BGP: [`Lab::router`] and [`Lab::start_bgp_peer`] give a [`BgpDaemon`]:
//!   [`BgpDaemon::sessions`], [`BgpDaemon::routes`] (prefix, peer, next hop, AS path,
//!   communities, large communities, local preference, best), [`BgpDaemon::wait_established`],
//!   [`BgpDaemon::wait_route`].
//! - Waiting: [`wait_until`] / [`wait_for`], always with a deadline and a message saying what
//!   was awaited and what was last seen.
//!
//! A test needs root and the tools of its spec; if either is missing [`Lab::up`] fails with
//! [`LabError::NotRoot`] or [`LabError::MissingTool`] naming the Debian package. The
//! workspace binaries must be built (`cargo build --workspace --bins`). A lab dropped without
//! `down()` prints the last lines of every lab process's log.
//!
//! ## Router daemons
//!
//! The router peers with every node over IPv4 (session `node<i>_v4`, IPv4 routes) and IPv6
//! (`node<i>_v6`, IPv6 routes), accepts every route, advertises none, and installs what it
//! learns into its kernel with ECMP across nodes:
//!
//! - **BIRD 2** (default): `bird -f -c DIR/bird.conf -s DIR/bird.ctl`, kernel protocols with
//!   `merge paths`; read with `birdc -s DIR/bird.ctl show protocols all` / `show route all`.
//! - **FRR**: zebra, bgpd and bfdd in the foreground as user `frr`, with every path (config,
//!   pid file, zserv socket, vty sockets, bfdd socket) in DIR, `maximum-paths 8`; read with
//!   `vtysh --vty_socket DIR -c '... json'`. (IPv6 kernel routes use the nodes' link-local
//!   next hops.)
//! - **GoBGP**: `gobgpd -f DIR/gobgpd.toml --api-hosts 127.0.0.1:50051` (the router's own
//!   loopback), multipath on; read with `gobgp -j`. gobgpd installs no routes, so the lab
//!   runs `ferrolb-lab gobgp-sync` beside it (process `gobgp-sync@router`), which mirrors
//!   its multipath RIB into the kernel every 200 ms as `proto bgp` routes.
//!
//! DIR is `$TMPDIR/<prefix>/<daemon>-<host>`. [`Lab::start_bgp_peer`] runs a second
//! instance of a daemon in a node, peering with the router and advertising given prefixes
//! with communities: it proves the router before FerroLB's speaker speaks BGP.
//!
//! ## By hand
//!
//! ```text
//! ferrolb-lab up [--nodes N] [--router bird|frr|gobgp|none] [--controller] [--speakers]
//!     builds a lab, prints every host with its addresses, and stays up until Ctrl-C
//! ip netns exec <prefix>-client1 bash          a shell in a host (any host name)
//! ip netns exec <prefix>-router birdc -s $TMPDIR/<prefix>/bird-router/bird.ctl show route all
//! ip netns exec <prefix>-router vtysh --vty_socket $TMPDIR/<prefix>/frr-router -c 'show bgp summary'
//! ip netns exec <prefix>-router gobgp neighbor
//! ip netns exec <prefix>-router ip route        the routes the router really uses
//! ferrolb-lab sweep                               remove leftovers of dead labs
//! ip netns list | grep ^flb                       what exists (labs of live processes too)
//! ```
//!
//! Environment: `FERROLB_LAB_KEEP=1` keeps a lab's directory (configs, logs) after teardown
//! until the next run's sweep; `FERROLB_BIN_DIR` says where the workspace binaries are (default:
//! the running executable's `target/<profile>`); `FERROLB_LAB_VERBOSE=1` reports teardown times.

pub mod build;
pub mod cluster;
pub mod cmd;
pub mod error;
pub mod hold;
pub mod host;
pub mod instance;
pub mod load;
pub mod ops;
pub mod plan;
pub mod probe;
pub mod process;
pub mod registry;
pub mod router;
pub mod spec;
pub mod wait;

pub use cluster::EndpointPort;
pub use error::{LabError, Result};
pub use hold::{HoldReport, HoldSpec};
pub use host::{Host, Role};
pub use instance::{Lab, bin_dir, binary};
pub use ops::{Capture, Neighbor};
pub use probe::{Answer, Proto};
pub use registry::{LAB_PREFIX, lab_namespaces, namespaces_of, sweep_leftovers};
pub use router::{Announce, BgpConfig, BgpDaemon, Community, LargeCommunity, RoutePath, Session};
pub use spec::{LabSpec, PodSpec, RouterKind};
pub use wait::{wait_for, wait_until};
