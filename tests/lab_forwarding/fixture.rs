//! What the forwarding lab tests share: a small lab (three nodes, pods where a test puts them,
//! one LAN client, no router daemon), Service and EndpointSlice manifests, speakers with a
//! data path, static routes from the client to a node, and waiting for the first answer.

use ferrolb_e2e::lab::{Answer, Lab, LabSpec, Proto, plan, wait_for};
use std::net::IpAddr;
use std::time::Duration;

/// The layer-2 pool on the LAN (IPv4 and IPv6); until announcing exists, a test routes the
/// addresses to a node by hand.
pub const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan}\nspec: {addresses: [10.100.0.200-10.100.0.250, 'fd00:100::200-fd00:100::250']}\n";

/// The echo servers' TCP (and UDP) port.
pub const ECHO: u16 = plan::ECHO_TCP;

/// How long the data path may take to forward a new Service (the speakers start, read the
/// manifests and program): generous, for a loaded machine; three times that in the VM lab,
/// whose emulated CPUs (TCG) start a speaker beside another test's lab in 5-10 s.
#[cfg(not(feature = "vm-lab"))]
pub const PROGRAMMED: Duration = Duration::from_secs(20);
#[cfg(feature = "vm-lab")]
pub const PROGRAMMED: Duration = Duration::from_secs(60);

/// A lab with three nodes, `pods` (name, node) all with app `web`, one LAN client, no router
/// daemon, dual-stack; the address pool is written.
pub fn lab(pods: &[(&str, u8)]) -> anyhow::Result<Lab> {
    let mut spec = LabSpec {
        router: None,
        external_clients: 0,
        ..LabSpec::default()
    };
    for (name, node) in pods {
        spec = spec.pod(name, *node, "web");
    }
    let lab = Lab::up(spec)?;
    lab.write_manifest("pool.yaml", POOL)?;
    Ok(lab)
}

/// A dual-stack Service `name` in `default` whose port `echo` (TCP 7000) reaches the pods'
/// echo servers. `type_` is its type, `node_port` the port's `nodePort`, `meta` extra lines
/// under `metadata` and `spec` extra lines under `spec` (each indented by two spaces).
pub fn service(name: &str, type_: &str, node_port: Option<u16>, meta: &str, spec: &str) -> String {
    service_with_ports(name, type_, &[echo_port("TCP", node_port)], meta, spec)
}

/// [`service`] with the given `ports` entries (see [`echo_port`]).
pub fn service_with_ports(
    name: &str,
    type_: &str,
    ports: &[String],
    meta: &str,
    spec: &str,
) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n{meta}\
         spec:\n  type: {type_}\n  selector: {{app: web}}\n  ipFamilyPolicy: RequireDualStack\n  \
         ipFamilies: [IPv4, IPv6]\n  ports: [{}]\n{spec}",
        ports.join(", ")
    )
}

/// A Service port reaching the echo servers over `protocol` (`TCP`: named `echo`, `UDP`:
/// `echo-udp`, as [`endpoints`] and the lab's slices name them), with its `nodePort`.
pub fn echo_port(protocol: &str, node_port: Option<u16>) -> String {
    let name = if protocol == "UDP" {
        "echo-udp"
    } else {
        "echo"
    };
    let node_port = node_port.map_or(String::new(), |p| format!(", nodePort: {p}"));
    format!("{{name: {name}, port: {ECHO}, targetPort: {ECHO}, protocol: {protocol}{node_port}}}")
}

/// `metadata` lines picking the scheduler of a Service.
pub fn scheduler(name: &str) -> String {
    format!("  annotations: {{ferrolb.io/scheduler: {name}}}\n")
}

/// Write the EndpointSlices of Service `service`: the named pods, on the echo port.
pub fn endpoints(lab: &Lab, service: &str, pods: &[&str]) -> anyhow::Result<()> {
    let yaml = lab.endpoint_slices_for("default", service, pods, &[("echo", ECHO, "TCP")]);
    lab.write_manifest(&format!("{service}-slices.yaml"), &yaml)?;
    Ok(())
}

/// Write the dual-stack Service `web` of `type_` with the echo port over TCP and UDP (both on
/// `node_port`) and extra `spec` lines, and its EndpointSlices over web-a and web-b.
pub fn tcp_and_udp_web(lab: &Lab, type_: &str, node_port: u16, spec: &str) -> anyhow::Result<()> {
    let ports = [
        echo_port("TCP", Some(node_port)),
        echo_port("UDP", Some(node_port)),
    ];
    lab.write_manifest(
        "web.yaml",
        &service_with_ports("web", type_, &ports, "", spec),
    )?;
    let slices = lab.endpoint_slices_for(
        "default",
        "web",
        &["web-a", "web-b"],
        &[("echo", ECHO, "TCP"), ("echo-udp", ECHO, "UDP")],
    );
    lab.write_manifest("web-slices.yaml", &slices)?;
    Ok(())
}

/// `spec` lines giving a Service the ClusterIPs `[v4, v6]`.
pub fn cluster_ips(ips: [&str; 2]) -> String {
    format!(
        "  clusterIP: {}\n  clusterIPs: [{}, '{}']\n",
        ips[0], ips[0], ips[1]
    )
}

/// Start a speaker with `dataplane` on each of `nodes`.
pub fn speakers(lab: &Lab, dataplane: &str, nodes: &[&str]) -> anyhow::Result<()> {
    for node in nodes {
        lab.start_speaker_with(node, &["--dataplane", dataplane])?;
    }
    Ok(())
}

/// The unspecified address of a family (`::` or `0.0.0.0`): a `like` for the helpers below.
pub fn any(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from([0u16; 8])
    } else {
        IpAddr::from([0u8; 4])
    }
}

/// Node `i`'s LAN address of the family of `like`.
pub fn node_addr(i: u8, like: IpAddr) -> IpAddr {
    let (v4, v6) = plan::node(i);
    if like.is_ipv4() { v4.into() } else { v6.into() }
}

/// Node `i`'s pod gateway (its address on the pod bridge) of the family of `like`.
pub fn pod_gateway(i: u8, like: IpAddr) -> IpAddr {
    let (v4, v6) = plan::pod_gateway(i);
    if like.is_ipv4() { v4.into() } else { v6.into() }
}

/// The address of host `name` of the family of `like`.
pub fn host_addr(lab: &Lab, name: &str, like: IpAddr) -> anyhow::Result<IpAddr> {
    lab.host(name)?
        .addr(like.is_ipv6())
        .ok_or_else(|| anyhow::anyhow!("{name} has no address of the family of {like}"))
}

/// Route `ips` from host `from` to node `i`, as layer 2 or BGP will once they announce.
pub fn route(lab: &Lab, from: &str, ips: &[IpAddr], i: u8) -> anyhow::Result<()> {
    for ip in ips {
        let len = if ip.is_ipv4() { "32" } else { "128" };
        let via = node_addr(i, *ip).to_string();
        lab.exec(
            from,
            &[
                "ip",
                "route",
                "replace",
                &format!("{ip}/{len}"),
                "via",
                &via,
            ],
        )?;
    }
    Ok(())
}

/// The first answer from `addr:port` through the data path, which may still be programming.
pub fn first_answer(lab: &Lab, from: &str, addr: IpAddr, port: u16) -> anyhow::Result<Answer> {
    Ok(wait_for(
        &format!("an answer from {addr} port {port} in {from}"),
        PROGRAMMED,
        || lab.probe(from, Proto::Tcp, addr, port).ok(),
    )?)
}

/// `n` answers from `addr:port` in `from`, in order, once the data path forwards.
pub fn answers(
    lab: &Lab,
    from: &str,
    addr: IpAddr,
    port: u16,
    n: usize,
) -> anyhow::Result<Vec<Answer>> {
    let mut v = vec![first_answer(lab, from, addr, port)?];
    for _ in 1..n {
        v.push(lab.probe(from, Proto::Tcp, addr, port)?);
    }
    Ok(v)
}

/// Whether a TCP connection to `addr:port` from `from` fails (within half a second).
pub fn refused(lab: &Lab, from: &str, addr: IpAddr, port: u16) -> bool {
    lab.probe_with_timeout(from, Proto::Tcp, addr, port, Duration::from_millis(500))
        .is_err()
}

/// None of `ips` answers `from` on the echo port any more.
pub fn all_refused(lab: &Lab, from: &str, ips: &[IpAddr]) -> anyhow::Result<()> {
    for ip in ips {
        anyhow::ensure!(
            refused(lab, from, *ip, ECHO),
            "{ip} still forwarded to {from}"
        );
    }
    Ok(())
}

/// Make `node` track connections before any speaker runs, as a node with a CNI's (or anyone's)
/// stateful rules does: a namespace's conntrack only starts with the first rule that needs it.
pub fn track_connections(lab: &Lab, node: &str) -> anyhow::Result<()> {
    let script = "add table inet cni\n\
                  add chain inet cni input { type filter hook input priority 0; }\n\
                  add rule inet cni input ct state established accept\n";
    lab.exec(node, &["nft", script])?;
    Ok(())
}

/// The speaker on `node` applied every change as a change: the kernel never refused an
/// incremental program (DNAT rules, or the userspace path's redirects), which the speaker
/// would have followed with a whole new table, losing rotation counters and affinity.
pub fn applied_as_changes(lab: &Lab, node: &str) -> anyhow::Result<()> {
    let log = lab.log(&format!("speaker@{node}"))?;
    anyhow::ensure!(
        !log.contains("incremental nftables update failed"),
        "speaker@{node} fell back to a whole program:\n{log}"
    );
    Ok(())
}

/// `nft list table <family> ferrolb` in `node` (empty if there is no such table).
pub fn nft_table(lab: &Lab, node: &str, family: &str) -> anyhow::Result<String> {
    let out = lab.exec_output(node, &["nft", "list", "table", family, "ferrolb"])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `ferrolb` tables of `node`, as `nft list tables` names them (`table ip ferrolb`, ...).
pub fn ferrolb_tables(lab: &Lab, node: &str) -> anyhow::Result<Vec<String>> {
    Ok(lab
        .exec(node, &["nft", "list", "tables"])?
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(" ferrolb"))
        .map(String::from)
        .collect())
}
