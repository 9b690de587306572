//! `ferrolb-lab`: bring the network-namespace lab up by hand, run the demo, clean up.
//!
//! ```text
//! ferrolb-lab demo [--check] [--failover] [--router bird|frr|gobgp]
//!                                                      the README's demo (examples/lab/demo.sh)
//! ferrolb-lab up [--nodes N] [--router bird|frr|gobgp|none] [--controller] [--speakers]
//!                                                        a lab that stays up until Ctrl-C
//! ferrolb-lab sweep                                      remove what dead labs left behind
//! ```

mod demo;

use clap::{Parser, Subcommand};
use ferrolb_e2e::lab::{self, Lab, LabSpec, RouterKind};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ferrolb-lab", about = "FerroLB's network-namespace lab")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring up a 3-node lab, give example Services their IPs and show what a client gets.
    Demo {
        /// Run through once and exit 0 only if every expected answer arrived.
        #[arg(long)]
        check: bool,
        /// The router's BGP daemon.
        #[arg(long, default_value = "bird")]
        router: RouterKind,
        /// Then kill the speaker announcing `web`'s IPv4 address and show another node take
        /// over while the client keeps asking.
        #[arg(long)]
        failover: bool,
    },
    /// Bring a lab up and keep it until Ctrl-C, printing how to enter its hosts.
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u8,
        /// The router's BGP daemon, or `none`.
        #[arg(long, default_value = "bird")]
        router: String,
        /// IPv4 only.
        #[arg(long)]
        ipv4_only: bool,
        /// Also start the controller on the lab's manifest directory.
        #[arg(long)]
        controller: bool,
        /// Also start a speaker on every node.
        #[arg(long)]
        speakers: bool,
    },
    /// Remove namespaces and directories of labs whose owner process is dead.
    Sweep,
    /// (Run by the lab in a GoBGP router host.) Mirror gobgpd's RIB into the kernel.
    #[command(hide = true)]
    GobgpSync,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Demo {
            check,
            router,
            failover,
        } => demo::run(check, router, failover),
        Command::Up {
            nodes,
            router,
            ipv4_only,
            controller,
            speakers,
        } => up(nodes, &router, !ipv4_only, controller, speakers),
        Command::Sweep => sweep(),
        Command::GobgpSync => lab::router::gobgp_sync_forever(),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferrolb-lab: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn sweep() -> anyhow::Result<ExitCode> {
    lab::cmd::require_root()?;
    let swept = lab::sweep_leftovers();
    if swept.is_empty() {
        println!("nothing to sweep");
    }
    for p in &swept {
        println!("swept {p}");
    }
    let left = lab::lab_namespaces();
    if !left.is_empty() {
        println!(
            "namespaces of running labs (left alone): {}",
            left.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn up(
    nodes: u8,
    router: &str,
    dual_stack: bool,
    controller: bool,
    speakers: bool,
) -> anyhow::Result<ExitCode> {
    let router = match router {
        "none" => None,
        r => Some(r.parse::<RouterKind>().map_err(anyhow::Error::msg)?),
    };
    let spec = LabSpec {
        dual_stack,
        ..LabSpec::with_nodes(nodes).router(router)
    };
    let lab = Lab::up(spec)?;
    if controller {
        lab.start_controller()?;
    }
    if speakers {
        lab.start_speakers()?;
    }
    println!("{}", describe(&lab));
    println!("The lab stays up until Ctrl-C (then everything above is removed).");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// A description of a lab for people: hosts, addresses, how to get in.
pub fn describe(lab: &Lab) -> String {
    let mut s = format!(
        "lab {} is up (files in {})\n\n",
        lab.prefix(),
        lab.dir().display()
    );
    s.push_str("  host       addresses                        enter with\n");
    for h in lab.hosts() {
        let addrs: Vec<String> = h.addrs().iter().map(|a| a.to_string()).collect();
        s.push_str(&format!(
            "  {:<10} {:<32} ip netns exec {} bash\n",
            h.name,
            addrs.join(" "),
            h.netns
        ));
    }
    if let Ok(r) = lab.router() {
        let dir = r.dir.display();
        let look = match r.kind {
            RouterKind::Bird => format!("birdc -s {dir}/bird.ctl show protocols"),
            RouterKind::Frr => format!("vtysh --vty_socket {dir} -c 'show bgp summary'"),
            RouterKind::Gobgp => "gobgp neighbor".into(),
        };
        let ns = &lab
            .host("router")
            .map(|h| h.netns.clone())
            .unwrap_or_default();
        s.push_str(&format!(
            "\n  router ({}): ip netns exec {ns} {look}\n",
            r.kind
        ));
    }
    s.push_str(&format!(
        "\n  manifests: {}\n  status:    {}\n  logs:      {}/logs\n",
        lab.manifests_dir().display(),
        lab.status_dir().display(),
        lab.dir().display()
    ));
    s
}
