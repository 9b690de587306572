//! `ferrolb-controller`: gives LoadBalancer Services their external IPs.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrolb_cluster::task::shutdown_signal;
use ferrolb_controller::{check, crds, event_loop, install, metrics, standalone};
use ferrolb_shared::reconcile::Reconciler;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::mpsc;

// mimalloc: the reconcile core allocates many small strings and maps; with 100,000 Services
// it re-syncs about 20% faster than with the system allocator (see the controller bench).
// Built without transparent huge pages (the crate's `no_thp`): mimalloc otherwise advises
// its regions for them, and each thread's first touch of a region made 2 MiB resident at
// once, 10 of the 11 MiB the idle controller held (memory bench). A heap of tens of MiB
// gains nothing from huge pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ferrolb-controller",
    version,
    about = "FerroLB controller: gives LoadBalancer Services their external IPs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Standalone mode: read config kinds, Services and Namespaces from this directory
    /// instead of the Kubernetes API server.
    #[arg(long, env = "FERROLB_MANIFESTS")]
    manifests: Option<PathBuf>,
    /// Standalone mode: where to write Service status (default: `<manifests>.status`).
    #[arg(long)]
    status_dir: Option<PathBuf>,
    /// Handle only Services with this spec.loadBalancerClass (default: Services without one).
    #[arg(long, env = "FERROLB_LB_CLASS")]
    lb_class: Option<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:7472")]
    metrics_addr: SocketAddr,
    /// Kubernetes mode: the namespace of the leader Lease and of controller Events.
    #[arg(long, env = "FERROLB_NAMESPACE", default_value = "ferrolb-system")]
    namespace: String,
    /// Kubernetes mode: this replica's identity in the Lease (default: the host name).
    #[arg(long, env = "FERROLB_POD_NAME")]
    identity: Option<String>,
    /// Log filter, as RUST_LOG (`info`, `ferrolb=debug`, ...).
    #[arg(long, env = "FERROLB_LOG", default_value = "info")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Validate manifests offline; exit 1 and list every problem if any.
    Check {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the CRDs generated from the types, or write them into a directory.
    Crds {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the one install manifest (namespace, CRDs, RBAC, controller, speakers), or write
    /// it to a file (config/install.yaml).
    Install {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print what FerroLB is doing: configuration state per component, pools, Services with
    /// their addresses, announcing nodes and BGP peers, BGP sessions. From the API server
    /// (KUBECONFIG or in-cluster), or with --status-dir from a standalone status directory.
    Status {
        /// table (default), json or yaml.
        #[arg(short, long, value_enum, default_value = "table")]
        output: ferrolb_controller::status::Output,
        /// A standalone controller's status directory instead of the API server.
        #[arg(long)]
        status_dir: Option<PathBuf>,
        /// Kubernetes mode: FerroLB's namespace.
        #[arg(long, env = "FERROLB_NAMESPACE", default_value = "ferrolb-system")]
        namespace: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Status {
            output,
            status_dir,
            namespace,
        }) => status(output, status_dir, &namespace),
        Some(Command::Check { files }) => {
            let report = check::check(&files);
            for line in &report.lines {
                println!("{line}");
            }
            if report.errors.is_empty() {
                return ExitCode::SUCCESS;
            }
            for e in &report.errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} error(s); the configuration is rejected",
                report.errors.len()
            );
            ExitCode::from(1)
        }
        Some(Command::Install { out }) => {
            let text = install::manifest();
            let written = match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display())),
                None => {
                    print!("{text}");
                    Ok(())
                }
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Crds { out }) => match write_crds(out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        None => {
            init_tracing(&cli.log);
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match runtime.block_on(run(cli)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn write_crds(out: Option<PathBuf>) -> anyhow::Result<()> {
    for (file, crd) in crds::all() {
        let text = crds::to_yaml(&crd);
        match &out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join(file), text).with_context(|| format!("writing {file}"))?;
            }
            None => print!("---\n{text}"),
        }
    }
    Ok(())
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let metrics = metrics::Metrics::new();
    let server = tokio::spawn(metrics::serve(cli.metrics_addr, metrics.clone()));
    let reconciler = Reconciler::new(cli.lb_class.clone());
    let (tx, rx) = mpsc::channel(1024);
    let Some(dir) = cli.manifests else {
        let identity = cli.identity.unwrap_or_else(hostname);
        return ferrolb_controller::kubernetes::run(reconciler, metrics, &cli.namespace, &identity)
            .await;
    };
    let status_dir = cli
        .status_dir
        .unwrap_or_else(|| standalone::default_status_dir(&dir));
    tracing::info!(manifests = %dir.display(), status = %status_dir.display(), "standalone mode");
    let source = standalone::source(dir, status_dir.clone());
    let inputs = standalone::StandaloneInputs::new(tx, status_dir.clone());
    let sink = standalone::StatusDirSink::new(status_dir);
    let source = tokio::spawn(source.run(inputs));
    let event_loop = tokio::spawn(event_loop::run(rx, reconciler, sink, metrics));
    tokio::select! {
        r = source => r.context("source task")?.context("manifest source")?,
        _ = event_loop => {}
        r = server => r.context("metrics task")?.context("metrics server")?,
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "ferrolb-controller".into())
}

/// `ferrolb-controller status`: the report on stdout, unreadable parts as warnings on stderr.
fn status(
    output: ferrolb_controller::status::Output,
    status_dir: Option<PathBuf>,
    namespace: &str,
) -> ExitCode {
    use ferrolb_controller::status::{assemble, from_dir, from_kube, render};
    let read = match status_dir {
        Some(dir) => from_dir::read(&dir),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    let client = kube::Client::try_default().await.context(
                        "no Kubernetes client (KUBECONFIG, or --status-dir for standalone mode)",
                    )?;
                    from_kube::read(&client, namespace).await
                })
            }),
    };
    match read {
        Ok((inputs, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            print!(
                "{}",
                render(&assemble(inputs, jiff::Timestamp::now()), output)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrolb-controller status: {e:#}");
            ExitCode::FAILURE
        }
    }
}
