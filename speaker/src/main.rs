//! `ferrolb-speaker`: runs on every node and announces LoadBalancer IPs.
//!
//! For now it parses its flags, reads and validates the configuration it would run with, and
//! stays up until told to stop; the cluster view, the announcers (layer 2, BGP) and the
//! forwarding layer come with their own issues.

use clap::Parser;
use ferrolb_shared::config::validate;
use ferrolb_shared::manifest::parse_documents;
use std::path::{Path, PathBuf};
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
    /// Data path: nftables, userspace or none.
    #[arg(long, default_value = "nftables", value_parser = ["nftables", "userspace", "none"])]
    dataplane: String,
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
        .init();
    tracing::info!(
        node = cli.node,
        dataplane = cli.dataplane,
        "ferrolb-speaker starting"
    );
    if let Some(dir) = &cli.manifests {
        report_config(dir);
    }
    tracing::warn!(
        node = cli.node,
        "announcing (layer 2, BGP) and forwarding are not implemented yet: this speaker announces nothing"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    tracing::info!("ferrolb-speaker stopping");
    ExitCode::SUCCESS
}

/// Read the config kinds under `dir` and log whether they would be accepted.
fn report_config(dir: &Path) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let parsed = parse_documents(&p.display().to_string(), &text);
                objects.extend(parsed.config_objects());
                errors.extend(parsed.errors);
            }
        }
    }
    match validate(&objects) {
        Ok(c) if errors.is_empty() => tracing::info!(
            pools = c.pools.len(),
            peers = c.peers.len(),
            "configuration valid"
        ),
        Ok(_) => errors.iter().for_each(|e| tracing::error!("{e}")),
        Err(e) => e.iter().chain(&errors).for_each(|e| tracing::error!("{e}")),
    }
}
