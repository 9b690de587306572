//! `ferrolb-speaker`: runs on every node; builds this node's view of the cluster for the
//! forwarding layer (and, later, layer 2 and BGP).

use anyhow::Context;
use clap::Parser;
use ferrolb_cluster::backoff::WatchBackoff;
use ferrolb_cluster::files::default_status_dir;
use ferrolb_cluster::task::{AbortOnDrop, shutdown_signal};
use ferrolb_speaker::dataplane::Mode;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::source::Source;
use ferrolb_speaker::{Options, start};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Data path: nftables, userspace or none.
    #[arg(long, default_value = "nftables")]
    dataplane: Mode,
    /// Userspace data path: the local ports its listeners take (FIRST-LAST). Keep them out of
    /// the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default)
    /// and the NodePort range.
    #[arg(long, default_value = "20000-29999", value_parser = parse_port_range)]
    proxy_ports: std::ops::RangeInclusive<u16>,
    /// Address for /metrics, /healthz and /readyz (port 0: any; the log says which).
    #[arg(long, default_value = "127.0.0.1:7473")]
    metrics_addr: SocketAddr,
    /// Kubernetes mode: the speaker's namespace, the only one whose Secrets it reads.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = "ferrolb-system")]
    namespace: String,
    /// Log filter, as RUST_LOG.
    #[arg(long, env = "FERROLB_LOG", default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let source = match cli.manifests {
        Some(manifests) => Source::Directory {
            status_dir: cli
                .status_dir
                .unwrap_or_else(|| default_status_dir(&manifests)),
            manifests,
        },
        None => Source::Kubernetes {
            client: kube::Client::try_default().await.context(
                "cannot configure a Kubernetes client (no in-cluster config, no kubeconfig)",
            )?,
            namespace: cli.namespace,
            backoff: WatchBackoff::default(),
        },
    };
    let mut options = Options::new(cli.node, cli.dataplane);
    options.dataplane.proxy_ports = cli.proxy_ports;
    let mut speaker = start(source, options, metrics);
    tokio::select! {
        r = &mut speaker.task => r.context("speaker task")??,
        r = &mut server.0 => r.context("metrics task")?.context("metrics server")?,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            speaker.shutdown().await?;
        }
    }
    Ok(())
}

/// `FIRST-LAST`, both ports, FIRST <= LAST.
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
