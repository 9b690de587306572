//! GoBGP in node2: gobgpd with the bench's own configuration (the lab's peer helper keeps
//! GoBGP's default 90 s hold time; the comparison needs the speaker's 9 s), its gRPC API on
//! the node's own loopback, driven with the `gobgp` CLI in the node.

use crate::setup::{HOLD_SECS, KEEPALIVE_SECS};
use ferrolb_e2e::lab::{Lab, cmd, plan};
use std::process::Child;
use std::time::Duration;

pub const NODE: &str = "node2";
/// BIRD's protocol for node2's IPv4 session.
pub const PROTO: &str = "node2_v4";
const API: &str = "127.0.0.1:50051";
pub const PROCESS: &str = "gobgpd@node2";

fn config() -> String {
    let (router, _) = plan::router_lan();
    format!(
        "[global.config]\n  as = {}\n  router-id = \"{}\"\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{router}\"\n    peer-as = {}\n  \
         [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = {HOLD_SECS}\n    \
         keepalive-interval = {KEEPALIVE_SECS}\n    idle-hold-time-after-reset = 1\n  \
         [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n",
        plan::NODE_ASN,
        plan::node(2).0,
        plan::ROUTER_ASN
    )
}

/// Starts gobgpd in node2 and waits until its API answers.
pub fn start(lab: &Lab) -> anyhow::Result<()> {
    let dir = lab.dir().join("gobgp-bench");
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("gobgpd.toml");
    std::fs::write(&conf, config())?;
    let conf = conf.to_string_lossy().into_owned();
    // Warnings only: info logs every peer event, and the comparison is of BGP, not of logging.
    let argv = [
        "gobgpd",
        "-f",
        &conf,
        "--api-hosts",
        API,
        "--pprof-disable",
        "-p",
        "-l",
        "warn",
    ];
    let name = lab.spawn("gobgpd", NODE, &argv)?;
    lab.wait_process(
        &name,
        "gobgpd's API to answer",
        Duration::from_secs(15),
        || cli(lab, &["neighbor"]).map(drop).map_err(|e| e.to_string()),
    )?;
    Ok(())
}

fn argv<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
    argv.extend_from_slice(args);
    argv
}

/// Runs the CLI in node2 to completion.
pub fn cli(lab: &Lab, args: &[&str]) -> anyhow::Result<String> {
    Ok(lab.exec(NODE, &argv(args))?)
}

/// Starts the CLI in node2 without waiting for it (the bench times around it).
pub fn spawn_cli(lab: &Lab, args: &[&str]) -> anyhow::Result<Child> {
    let h = lab.host(NODE)?;
    let mut c = cmd::in_netns(&h.netns, &argv(args));
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    Ok(c.spawn()?)
}

/// Waits for a CLI started with [`spawn_cli`]; an error carries its stderr.
pub fn finish(child: Child, what: &str) -> anyhow::Result<()> {
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Adds one route to GoBGP's global RIB (advertised to BIRD).
pub fn add(lab: &Lab, prefix: &str) -> anyhow::Result<()> {
    cli(lab, &["global", "rib", "-a", "ipv4", "add", prefix]).map(drop)
}

/// Removes every route from GoBGP's global RIB.
pub fn clear(lab: &Lab) -> anyhow::Result<()> {
    cli(lab, &["global", "rib", "-a", "ipv4", "del", "all"]).map(drop)
}
