//! Uninstall in the lab, for every data path: what `kubectl delete -f config/install.yaml`
//! does to the pods (SIGTERM to the controller and every speaker at once), and what FerroLB
//! must not leave on a node afterwards. Shared by the BGP lab (`lab_bgp/uninstall.rs`, with a
//! router and layer 2) and the IPVS path's case (`ipvs.rs`, in the VM lab).

use ferrolb_e2e::lab::Lab;
use std::net::IpAddr;
use std::time::Duration;

/// SIGTERM to the controller and the speakers of `nodes` at once; each must exit by itself
/// within `limit` (the lab's own stop would SIGKILL a hung one after 5 s and hide it), having
/// chosen a clean stop with the default `--on-stop auto` (standalone mode: no DaemonSet).
pub fn uninstall(lab: &Lab, nodes: &[&str], limit: Duration) -> anyhow::Result<()> {
    let names: Vec<String> = std::iter::once("controller@ctl".to_string())
        .chain(nodes.iter().map(|n| format!("speaker@{n}")))
        .collect();
    for name in &names {
        lab.signal(name, rustix::process::Signal::TERM)?;
    }
    for name in &names {
        lab.wait_exit(name, limit)?;
    }
    for node in nodes {
        let log = lab.log(&format!("speaker@{node}"))?;
        anyhow::ensure!(
            log.contains("shutting down: --on-stop auto: standalone mode"),
            "{node} did not choose a clean stop:\n{log}"
        );
    }
    Ok(())
}

/// `node` holds nothing of FerroLB: no nftables table named `ferrolb*` (any family: the
/// nftables path's `ip`/`ip6 ferrolb`, the IPVS path's `inet ferrolb-ipvs`), no `ferrolb0`,
/// none of `ips` on any interface.
pub fn assert_clean(lab: &Lab, node: &str, ips: &[IpAddr]) -> anyhow::Result<()> {
    let tables = ferrolb_tables(lab, node)?;
    anyhow::ensure!(tables.is_empty(), "{node}: tables left: {tables:?}");
    anyhow::ensure!(!has_dummy(lab, node)?, "{node}: ferrolb0 left behind");
    let held = addresses(lab, node)?;
    let left: Vec<&IpAddr> = ips.iter().filter(|ip| held.contains(ip)).collect();
    anyhow::ensure!(left.is_empty(), "{node}: service addresses left: {left:?}");
    Ok(())
}

/// `nft list tables` lines of `node` naming a table whose name starts with `ferrolb`.
pub fn ferrolb_tables(lab: &Lab, node: &str) -> anyhow::Result<Vec<String>> {
    Ok(lab
        .exec(node, &["nft", "list", "tables"])?
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.split(' ')
                .next_back()
                .is_some_and(|t| t.starts_with("ferrolb"))
        })
        .map(String::from)
        .collect())
}

/// Whether `node` has the IPVS path's dummy interface.
fn has_dummy(lab: &Lab, node: &str) -> anyhow::Result<bool> {
    Ok(lab
        .exec_output(node, &["ip", "link", "show", "dev", "ferrolb0"])?
        .status
        .success())
}

/// Every address on any interface of `node`.
fn addresses(lab: &Lab, node: &str) -> anyhow::Result<Vec<IpAddr>> {
    Ok(lab
        .exec(node, &["ip", "-o", "addr", "show"])?
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect())
}
