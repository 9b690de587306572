//! `ferrolb-speaker`: runs on every node and announces LoadBalancer IPs.
//!
//! For now it parses its flags and validates the configuration it would run with; the
//! announcers (layer 2, BGP) and the forwarding layer come with their own issues.

use clap::Parser;
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
    /// Data path: nftables, userspace or none.
    #[arg(long, default_value = "nftables", value_parser = ["nftables", "userspace", "none"])]
    dataplane: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_target(false).init();
    tracing::info!(
        node = cli.node,
        dataplane = cli.dataplane,
        "ferrolb-speaker starting"
    );
    eprintln!(
        "ferrolb-speaker: announcing (layer 2, BGP) and forwarding are not implemented yet; \
         nothing to do for node {}",
        cli.node
    );
    ExitCode::from(2)
}
