//! The forwarding layer with real traffic in the lab, for every data path (nftables in the
//! kernel, the userspace proxy, and, built with the `vm-lab` feature and run in the VM lab's
//! stock kernel, the kernel's IPVS), over IPv4 and IPv6:
//!
//! - here: a client reaches a LoadBalancer IP (routed to node1 statically, until layer 2 and
//!   BGP announce it) and the node's data path spreads connections over pods on every node;
//! - [`frontends`]: a ClusterIP from a pod (and from a pod that is its own endpoint), a
//!   NodePort on every node;
//! - [`schedulers`]: rr and wrr spread, sh and mh are deterministic and agree across nodes
//!   (and with the model in `ferrolb-shared`, see [`predict`]), `sessionAffinity: ClientIP`,
//!   lc refused by the kernel path and served by the userspace one;
//! - [`policy`]: `externalTrafficPolicy: Local` and its health-check node port;
//! - [`proxy_ports`]: the userspace proxy's listeners answer only through the redirects;
//! - [`churn`]: endpoint removal under continuous load, and a speaker killed and restarted
//!   under load (the kernel keeps forwarding), then stopped cleanly (the table goes);
//! - `ipvs` (VM lab only): every case above with `--dataplane ipvs`, `ipvsadm -Ln` compared
//!   with the model after each step (`ipvs_table`), lc in the kernel, graceful removal with
//!   weight 0, layer 2 with the address on the dummy interface, and an uninstall leaving
//!   every node clean ([`leftovers`], shared with the BGP lab's uninstall case).
//!
//! The tests of each data path are named after it (`nftables_...`, `userspace_...`,
//! `ipvs_...`): `tests/run.sh` runs the IPVS ones in the VM with the filter `ipvs_`.
//!
//! Every test builds its own lab (parallel-safe) with no router daemon. Needs root, iproute2,
//! nftables, and the workspace binaries (`cargo build --workspace --bins`; tests/run.sh
//! provides all).

#[path = "lab_forwarding/churn.rs"]
mod churn;
#[path = "lab_forwarding/fixture.rs"]
mod fixture;
#[path = "lab_forwarding/frontends.rs"]
mod frontends;
#[cfg(feature = "vm-lab")]
#[path = "lab_forwarding/ipvs.rs"]
mod ipvs;
#[path = "lab_forwarding/ipvs_table.rs"]
mod ipvs_table;
#[cfg(feature = "vm-lab")]
#[path = "lab_forwarding/leftovers.rs"]
mod leftovers;
#[path = "lab_forwarding/policy.rs"]
mod policy;
#[path = "lab_forwarding/predict.rs"]
mod predict;
#[path = "lab_forwarding/proxy_ports.rs"]
mod proxy_ports;
#[path = "lab_forwarding/schedulers.rs"]
mod schedulers;

use ferrolb_e2e::lab::Proto;
use fixture::{ECHO, answers, endpoints, pod_gateway, route, service, speakers};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

pub(crate) fn check_data_path(dataplane: &str) -> anyhow::Result<()> {
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    lab.write_manifest("web.yaml", &service("web", "LoadBalancer", None, "", ""))?;
    endpoints(&lab, "web", &["web-a", "web-b"])?;
    lab.start_controller()?;
    speakers(&lab, dataplane, &["node1", "node2", "node3"])?;
    let ips = lab.wait_service_ips("default", "web", Duration::from_secs(20))?;
    route(&lab, "client1", &ips, 1)?;
    ipvs_matches_model(&lab, dataplane, &[1, 2, 3])?;
    for ip in &ips {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for a in answers(&lab, "client1", *ip, ECHO, 20)? {
            *counts.entry(a.pod).or_default() += 1;
        }
        assert_eq!(
            counts.keys().cloned().collect::<Vec<_>>(),
            ["web-a", "web-b"],
            "{dataplane} {ip}: {counts:?}"
        );
        // Round robin over two pods: an even split.
        assert!(
            counts.values().all(|c| (8..=12).contains(c)),
            "{dataplane} {ip}: {counts:?}"
        );
    }
    // Cluster policy: pods see node1 as the client (masquerade in the kernel path, the
    // proxy's own connection in the userspace path), never the real client, so replies come
    // back through node1: on node1 its pod-bridge address, from node2 its LAN address.
    for ip in &ips {
        for _ in 0..4 {
            let a = lab.probe("client1", Proto::Tcp, *ip, ECHO)?;
            let want = if a.pod == "web-a" {
                pod_gateway(1, *ip)
            } else {
                fixture::node_addr(1, *ip)
            };
            assert_eq!(a.client.ip(), want, "{dataplane}: {a:?}");
        }
    }
    // A bulk transfer both ways comes through intact (the userspace proxy splices it once a
    // direction has moved 256 KiB).
    let echo = ferrolb_e2e::lab::binary("ferrolb-lab-echo")?;
    let (bytes, port) = ((8 << 20).to_string(), ECHO.to_string());
    for ip in &ips {
        let (bin, ip) = (echo.to_string_lossy(), ip.to_string());
        let argv = [&*bin, "bulk", &ip, &port, "--bytes", &bytes];
        let out = lab.exec("client1", &argv)?;
        assert!(
            out.trim_end()
                .ends_with(&format!(" {bytes} bytes echoed intact")),
            "{dataplane} {ip}: {out}"
        );
    }
    lab.down()?;
    Ok(())
}

#[test]
fn nftables_forwards_a_loadbalancer_ip_to_pods_on_every_node() -> anyhow::Result<()> {
    check_data_path("nftables")
}

#[test]
fn userspace_forwards_a_loadbalancer_ip_to_pods_on_every_node() -> anyhow::Result<()> {
    check_data_path("userspace")
}

/// On the IPVS path, each of `nodes`' `ipvsadm -Ln` is what the model says (other paths have
/// no IPVS table to compare).
pub(crate) fn ipvs_matches_model(
    lab: &ferrolb_e2e::lab::Lab,
    dataplane: &str,
    nodes: &[u8],
) -> anyhow::Result<()> {
    if dataplane == "ipvs" {
        for i in nodes {
            ipvs_table::assert_matches_model(lab, *i)?;
        }
    }
    Ok(())
}

/// `--dataplane auto` (the default, so no flag) resolves to the data path this kernel offers,
/// says why in the log and in `ferrolb_speaker_dataplane`, and forwards. Whether the kernel
/// has IPVS is asked independently first, with `ipvsadm` in the node's namespace.
pub(crate) fn auto_resolves(want: &str) -> anyhow::Result<()> {
    let lab = fixture::lab(&[("web-a", 1), ("web-b", 2)])?;
    let has_ipvs = lab
        .exec_output("node1", &["ipvsadm", "-Ln"])?
        .status
        .success();
    anyhow::ensure!(
        has_ipvs == (want == "ipvs"),
        "this test expects a kernel {} IPVS here",
        if want == "ipvs" { "with" } else { "without" }
    );
    lab.write_manifest("web.yaml", &service("web", "LoadBalancer", None, "", ""))?;
    endpoints(&lab, "web", &["web-a", "web-b"])?;
    lab.start_controller()?;
    let speaker = lab.start_speaker("node1")?;
    let why = if want == "ipvs" {
        "data path ipvs: --dataplane auto: the kernel offers IPVS"
    } else {
        "data path nftables: --dataplane auto: the kernel offers no IPVS"
    };
    lab.wait_log(&speaker, why, fixture::PROGRAMMED)?;
    let ips = lab.wait_service_ips("default", "web", Duration::from_secs(20))?;
    route(&lab, "client1", &ips, 1)?;
    for ip in &ips {
        fixture::first_answer(&lab, "client1", *ip, ECHO)?;
    }
    let localhost = IpAddr::from([127, 0, 0, 1]);
    let (status, metrics) = lab.http_request("node1", localhost, 7473, "/metrics")?;
    assert_eq!(status, 200);
    for mode in ["ipvs", "nftables", "userspace", "none"] {
        let line = format!(
            "ferrolb_speaker_dataplane{{mode=\"{mode}\"}} {}",
            u8::from(mode == want)
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    ipvs_matches_model(&lab, want, &[1])?;
    lab.down()?;
    Ok(())
}

#[test]
fn auto_is_nftables_on_a_kernel_without_ipvs() -> anyhow::Result<()> {
    auto_resolves("nftables")
}

/// The pods that answered, counted.
fn tally<'a>(pods: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for p in pods {
        *counts.entry(p.to_string()).or_default() += 1;
    }
    counts
}

/// The family of an address, for messages.
fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}
