//! `ferrolb-speaker`: runs on every node; builds this node's view of the cluster for the
//! forwarding layer, layer 2 and BGP. On SIGTERM it stops as `--on-stop` says
//! (`ferrolb_shared::stop`).

use anyhow::Context;
use clap::Parser;
use ferrolb_cluster::backoff::WatchBackoff;
use ferrolb_cluster::files::default_status_dir;
use ferrolb_cluster::task::{AbortOnDrop, shutdown_signal};
use ferrolb_shared::config::duration::parse_go_duration;
use ferrolb_shared::l2::gossip::Timing;
use ferrolb_shared::stop::OnStop;
use ferrolb_speaker::bgp::BgpSettings;
use ferrolb_speaker::dataplane::Mode;
use ferrolb_speaker::layer2::L2Settings;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::on_stop::{self, PodRef};
use ferrolb_speaker::source::Source;
use ferrolb_speaker::{Options, start};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ferrolb-speaker",
    version,
    about = "FerroLB speaker: announces LoadBalancer IPs from this node"
)]
struct Cli {
    /// The name of the node this speaker runs on.
    #[arg(long, env = "FERROLB_NODE_NAME")]
    node: String,
    /// Standalone mode: read manifests from this directory instead of the API server.
    #[arg(long, env = "FERROLB_MANIFESTS")]
    manifests: Option<PathBuf>,
    /// Standalone mode: the controller's status directory, where the Services' status is
    /// read (default: `<manifests>.status`).
    #[arg(long, requires = "manifests")]
    status_dir: Option<PathBuf>,
    /// Data path: auto (ipvs where the kernel offers IPVS, else nftables), ipvs, nftables,
    /// userspace or none (kube-proxy forwards).
    #[arg(long, default_value = "auto")]
    dataplane: Mode,
    /// Userspace data path: the local ports its listeners take (FIRST-LAST). Keep them out of
    /// the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default)
    /// and the NodePort range.
    #[arg(long, default_value = "20000-29999", value_parser = parse_port_range)]
    proxy_ports: std::ops::RangeInclusive<u16>,
    /// nftables data path: how round-robin Services (rr, wrr) are laid out. `per-service` (the
    /// default): a chain and a counter per virtual server, IPVS's strict rotation. `shared`:
    /// chains shared by the virtual servers with the same endpoint count, for very large
    /// tables (at 10,000 Services: the first program in a third of the time, an endpoint change
    /// in under a millisecond), at the price of one counter among them (an even spread, but
    /// not in strict turn).
    #[arg(long, default_value = "per-service", value_parser = parse_round_robin)]
    nft_round_robin: ferrolb_shared::ipvs::nft::RoundRobin,
    /// IPVS data path: the dummy interface that holds the service addresses.
    #[arg(long, default_value = ferrolb_speaker::dataplane::ipvs::addresses::DEFAULT_LINK)]
    ipvs_interface: String,
    /// IPVS data path: where the speaker remembers which virtual servers are its own, for the
    /// next speaker after a crash (keep it on the node, not in the container).
    #[arg(long, default_value = ferrolb_speaker::dataplane::ipvs::table::DEFAULT_STATE_FILE)]
    ipvs_state_file: PathBuf,
    /// Layer 2 mode: answer ARP/NDP for the LoadBalancer IPs this node is elected for.
    /// `--layer2 false` turns it off (BGP only, or tools and tests that must not announce).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    layer2: bool,
    /// BGP mode: keep sessions with the BGPPeers that select this node and advertise the
    /// LoadBalancer IPs to them. Nothing is opened while no BGPPeer selects this node.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    bgp: bool,
    /// TCP port to listen on for BGP peers that connect to us (179; tests use others).
    #[arg(long, default_value_t = ferrolb_speaker::bgp::BGP_PORT)]
    bgp_listen_port: u16,
    /// Handle only Services with this spec.loadBalancerClass (default: Services without one).
    #[arg(long, env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// UDP port of the speakers' gossip (the same on every node).
    #[arg(long, default_value_t = ferrolb_shared::l2::gossip::DEFAULT_PORT)]
    gossip_port: u16,
    /// File holding the gossip key (at least 16 bytes). Without it, the key is read from the
    /// Secret `ferrolb-memberlist` (key `secretkey`); without either, gossip is off and
    /// failover waits for Node readiness.
    #[arg(long, env = "FERROLB_GOSSIP_SECRET_FILE")]
    gossip_secret_file: Option<PathBuf>,
    /// Gossip: how often each speaker probes one other (detection time is about one period,
    /// a probe timeout's indirect round and the suspect timeout; every speaker must use the
    /// same values).
    /// Default: 50ms (`Timing::default` in shared/src/l2/gossip.rs).
    #[arg(long, value_parser = parse_go_duration)]
    gossip_probe_period: Option<Duration>,
    /// Gossip: how long a probe waits for its ack before asking others to probe too (shorter
    /// than the probe period, with room for the indirect round's two round trips).
    /// Default: 20ms.
    #[arg(long, value_parser = parse_go_duration)]
    gossip_probe_timeout: Option<Duration>,
    /// Gossip: how long a suspected speaker has to refute before it is declared dead. Shorter
    /// detects faster; too short declares a busy node dead (measured in the README, "Layer 2
    /// failover": false failovers with both cores busy).
    /// Default: 100ms.
    #[arg(long, value_parser = parse_go_duration)]
    gossip_suspect_timeout: Option<Duration>,
    /// How long a node that came back (or a speaker that started) waits before it may take
    /// addresses back from others, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    l2_hold_down: Duration,
    /// How long a new owner waits for a live old owner to stop answering (planned moves).
    #[arg(long, default_value = "250ms", value_parser = parse_go_duration)]
    l2_handover: Duration,
    /// Re-announce every owned address this often (e.g. 30s), for switches and routers with
    /// long ARP/NDP caches. Off by default.
    #[arg(long, value_parser = parse_go_duration)]
    l2_refresh: Option<Duration>,
    /// A restart (`--on-stop keep`, a DaemonSet's rolling update): the other speakers keep
    /// this node's addresses here for up to this long while its replacement starts, so the
    /// connections through them, still forwarded by the kept data path, survive. A speaker
    /// not back by then loses its addresses to the others. `0s`: no planned restarts (the
    /// addresses move at once and back after the hold-down, as with MetalLB).
    #[arg(long, default_value = "30s", value_parser = parse_go_duration)]
    l2_restart_grace: Duration,
    /// Where a stopping speaker leaves its planned restart for the next one (keep it on the
    /// node, not in the container). An empty value turns planned restarts off: every stop
    /// moves this node's addresses at once.
    #[arg(long, default_value = ferrolb_speaker::layer2::restart_file::DEFAULT_PATH)]
    l2_restart_file: PathBuf,
    /// Gratuitous ARP / unsolicited NA sent on takeover (the first at once, then every
    /// 200 ms).
    #[arg(long, default_value_t = 3)]
    l2_gratuitous_repeats: u32,
    /// Address for /metrics, /healthz and /readyz (port 0: any; the log says which).
    #[arg(long, default_value = "127.0.0.1:7473")]
    metrics_addr: SocketAddr,
    /// Kubernetes mode: the speaker's namespace, the only one whose Secrets it reads.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = "ferrolb-system")]
    namespace: String,
    /// On SIGTERM: `clean` removes the data path, ceases BGP sessions (routers withdraw at
    /// once) and leaves the gossip: for an uninstall. `keep` leaves the data path programmed
    /// and closes BGP connections without a NOTIFICATION (routers with graceful restart keep
    /// the routes until the next speaker's End-of-RIB): for a restart. `auto` asks the API
    /// server: keep while the DaemonSet replaces this pod, clean otherwise (and in standalone
    /// mode).
    #[arg(long, default_value = "auto")]
    on_stop: OnStop,
    /// Kubernetes mode: this speaker's pod, looked up by `--on-stop auto`.
    #[arg(long, env = "FERROLB_POD_NAME")]
    pod_name: Option<String>,
    /// Log filter, as RUST_LOG.
    #[arg(long, env = "FERROLB_LOG", default_value = "info")]
    log: String,
}

// mimalloc, built without transparent huge pages (`no_thp`, as the controller's): the
// speaker's view of 10,000 Services is some two million small allocations, on which glibc's
// per-thread arenas and chunk headers left RSS 5-9 MiB higher and less predictable (memory
// bench: 56-60 MiB standalone with glibc, 51-54 MiB with this). With huge pages allowed it
// was the other way round: each thread's first touch of a region made 2 MiB resident.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // No speaker part reads a Service's labels (only the controller's allocation does).
    ferrolb_shared::cluster::keep_service_labels(false);
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    tracing::info!(node = cli.node, dataplane = %cli.dataplane, "ferrolb-speaker starting");
    let metrics = Metrics::new();
    let mut server = AbortOnDrop(tokio::spawn(ferrolb_cluster::http::serve(
        cli.metrics_addr,
        metrics.clone(),
    )));
    let mut pod = None;
    let source = match cli.manifests {
        Some(manifests) => Source::Directory {
            status_dir: cli
                .status_dir
                .unwrap_or_else(|| default_status_dir(&manifests)),
            manifests,
        },
        None => {
            let client = kube::Client::try_default().await.context(
                "cannot configure a Kubernetes client (no in-cluster config, no kubeconfig)",
            )?;
            pod = Some(PodRef {
                client: client.clone(),
                namespace: cli.namespace.clone(),
                pod: cli.pod_name.clone(),
            });
            Source::Kubernetes {
                client,
                namespace: cli.namespace,
                backoff: WatchBackoff::default(),
            }
        }
    };
    let mut options = Options::new(cli.node.clone(), cli.dataplane);
    options.dataplane.proxy_ports = cli.proxy_ports;
    options.dataplane.nft_round_robin = cli.nft_round_robin;
    options.dataplane.ipvs.link = cli.ipvs_interface;
    options.dataplane.ipvs.state_file = cli.ipvs_state_file;
    if cli.bgp {
        let mut bgp = BgpSettings::new(cli.node.clone());
        bgp.lb_class = cli.lb_class.clone();
        bgp.listen_port = cli.bgp_listen_port;
        options.bgp = Some(bgp);
    }
    if cli.layer2 {
        let timing = gossip_timing(
            cli.gossip_probe_period,
            cli.gossip_probe_timeout,
            cli.gossip_suspect_timeout,
        )?;
        let mut l2 = L2Settings::new(cli.node);
        l2.gossip_timing = timing;
        l2.lb_class = cli.lb_class;
        l2.gossip_port = cli.gossip_port;
        l2.gossip_secret = match &cli.gossip_secret_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("cannot read the gossip key {}", path.display()))?,
            ),
            None => None,
        };
        l2.hold_down = cli.l2_hold_down;
        l2.handover = cli.l2_handover;
        l2.restart_grace = cli.l2_restart_grace;
        l2.restart_file = Some(cli.l2_restart_file).filter(|p| !p.as_os_str().is_empty());
        l2.announcer.refresh = cli.l2_refresh;
        l2.announcer.gratuitous_repeats = cli.l2_gratuitous_repeats;
        options.layer2 = Some(l2);
    }
    let mut speaker = start(source, options, metrics);
    tokio::select! {
        r = &mut speaker.task => r.context("speaker task")??,
        r = &mut server.0 => r.context("metrics task")?.context("metrics server")?,
        _ = shutdown_signal() => {
            let (kind, why) = on_stop::choose(cli.on_stop, pod.as_ref()).await;
            tracing::info!(?kind, "shutting down: {why}");
            speaker.shutdown(kind).await?;
        }
    }
    Ok(())
}

/// The gossip timing from the flags, checked (a bad combination is refused at start, naming
/// the flags, rather than failing when gossip starts later).
fn gossip_timing(
    probe_period: Option<Duration>,
    probe_timeout: Option<Duration>,
    suspect_timeout: Option<Duration>,
) -> anyhow::Result<Timing> {
    let default = Timing::default();
    let timing = Timing {
        probe_period: probe_period.unwrap_or(default.probe_period),
        probe_rtt: probe_timeout.unwrap_or(default.probe_rtt),
        suspect_to_down: suspect_timeout.unwrap_or(default.suspect_to_down),
        ..default
    };
    timing.validate().map_err(|e| {
        anyhow::anyhow!(
            "--gossip-probe-period {:?}, --gossip-probe-timeout {:?}, --gossip-suspect-timeout \
             {:?}: {e}",
            timing.probe_period,
            timing.probe_rtt,
            timing.suspect_to_down
        )
    })?;
    Ok(timing)
}

/// `FIRST-LAST`, both ports, FIRST <= LAST.
fn parse_round_robin(s: &str) -> Result<ferrolb_shared::ipvs::nft::RoundRobin, String> {
    use ferrolb_shared::ipvs::nft::RoundRobin;
    match s {
        "per-service" => Ok(RoundRobin::PerService),
        "shared" => Ok(RoundRobin::Shared),
        _ => Err(format!("{s:?}: expected per-service or shared")),
    }
}

fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected FIRST-LAST, e.g. 20000-29999"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{s:?}: {p:?} is not a port (1-65535)"))
    };
    let (a, b) = (port(a)?, port(b)?);
    if a > b {
        return Err(format!("{s:?}: {a} is greater than {b}"));
    }
    Ok(a..=b)
}
