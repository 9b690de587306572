//! Building a lab's network from its description: namespaces, per-namespace sysctls, veth links
//! created inside lab namespaces (never in the root namespace), bridges, addresses and routes.
//!
//! Links: every LAN host has `eth0` whose peer is the port named after the host on `br-lan`
//! in the switch namespace; the router's `eth1` goes to `br-ext` (port `x-router`), where the
//! external clients are too (ports `x-ext<j>`). Each node has `br-pod` holding its pod CIDR's
//! gateway; a pod's `eth0` peers with the port named after the pod on that bridge, in hairpin
//! mode (as a CNI bridge plugin sets it), so a pod can reach itself through a Service.

use super::cmd;
use super::error::Result;
use super::host::{Host, Role};
use super::plan;
use super::registry;
use super::spec::LabSpec;

/// The hosts a spec describes, in creation order.
pub fn hosts(prefix: &str, spec: &LabSpec) -> Vec<Host> {
    let v6 = spec.dual_stack;
    let host =
        |name: String, role: Role, a: Option<(std::net::Ipv4Addr, std::net::Ipv6Addr)>| Host {
            netns: format!("{prefix}-{name}"),
            name,
            role,
            ipv4: a.map(|a| a.0),
            ipv6: a.filter(|_| v6).map(|a| a.1),
        };
    let mut v = vec![
        host("lan".into(), Role::Switch, None),
        host("ctl".into(), Role::Control, None),
        host("router".into(), Role::Router, Some(plan::router_lan())),
    ];
    for i in 1..=spec.nodes {
        v.push(host(format!("node{i}"), Role::Node(i), Some(plan::node(i))));
    }
    for j in 1..=spec.lan_clients {
        v.push(host(
            format!("client{j}"),
            Role::LanClient(j),
            Some(plan::lan_client(j)),
        ));
    }
    for j in 1..=spec.external_clients {
        v.push(host(
            format!("ext{j}"),
            Role::ExternalClient(j),
            Some(plan::ext_client(j)),
        ));
    }
    for i in 1..=spec.nodes {
        let mut k = 0;
        for p in spec.effective_pods().into_iter().filter(|p| p.node == i) {
            k += 1;
            let role = Role::Pod {
                node: i,
                app: p.app.clone(),
            };
            v.push(host(p.name, role, Some(plan::pod(i, k))));
        }
    }
    v
}

/// Sysctls for a host, written before any link exists so new links inherit the defaults.
fn sysctls(role: &Role, dual_stack: bool) -> Vec<(&'static str, &'static str)> {
    let mut s = vec![
        // Lab addresses are unique by construction: skip duplicate address detection, so IPv6
        // is usable at once (link-locals included).
        ("net/ipv6/conf/all/accept_dad", "0"),
        ("net/ipv6/conf/default/accept_dad", "0"),
        // Keep IPv6 addresses when a test takes a link down and up again.
        ("net/ipv6/conf/all/keep_addr_on_down", "1"),
        ("net/ipv6/conf/default/keep_addr_on_down", "1"),
        ("net/ipv4/conf/all/rp_filter", "0"),
        ("net/ipv4/conf/default/rp_filter", "0"),
        ("net/ipv6/conf/default/accept_ra", "0"),
    ];
    if matches!(role, Role::Switch) || !dual_stack {
        // The switch only bridges; with IPv6 off its ports send no MLD or router solicitations.
        s.push(("net/ipv6/conf/default/disable_ipv6", "1"));
    }
    if matches!(role, Role::Router | Role::Node(_)) {
        s.extend([
            ("net/ipv4/ip_forward", "1"),
            ("net/ipv6/conf/all/forwarding", "1"),
            ("net/ipv6/conf/default/forwarding", "1"),
            // Paths in the lab are deterministic; no host should be told to take another.
            ("net/ipv4/conf/all/send_redirects", "0"),
            ("net/ipv4/conf/default/send_redirects", "0"),
        ]);
    }
    s
}

/// Create the namespaces and set their sysctls.
pub fn namespaces(hosts: &[Host], dual_stack: bool) -> Result<()> {
    for h in hosts {
        registry::guarded(|| cmd::ip(&["netns", "add", &h.netns]).map(drop))?;
    }
    for h in hosts {
        let script: String = sysctls(&h.role, dual_stack)
            .iter()
            .map(|(k, v)| format!("echo {v} > /proc/sys/{k}\n"))
            .collect();
        cmd::run(&h.name, cmd::in_netns(&h.netns, &["sh", "-ec", &script]))?;
    }
    Ok(())
}

struct Batches<'a> {
    hosts: &'a [Host],
    dir: &'a std::path::Path,
    lines: Vec<Vec<String>>,
}

impl Batches<'_> {
    fn push(&mut self, host: &str, line: String) {
        let i = self
            .hosts
            .iter()
            .position(|h| h.name == host)
            .expect("known host");
        self.lines[i].push(line);
    }

    fn run(&mut self) -> Result<()> {
        for (h, lines) in self.hosts.iter().zip(&mut self.lines) {
            cmd::ip_batch(&h.name, &h.netns, self.dir, lines)?;
            lines.clear();
        }
        Ok(())
    }
}

fn addresses(b: &mut Batches<'_>, h: &Host, dev: &str, len4: u8, len6: u8) {
    if let Some(a) = h.ipv4 {
        b.push(&h.name, format!("addr add {a}/{len4} dev {dev}"));
    }
    if let Some(a) = h.ipv6 {
        b.push(&h.name, format!("addr add {a}/{len6} dev {dev} nodad"));
    }
}

/// Create links, addresses and routes.
pub fn links(hosts: &[Host], spec: &LabSpec, dir: &std::path::Path) -> Result<()> {
    let ns_of = |name: &str| {
        hosts
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.netns.clone())
            .expect("known host")
    };
    let switch = ns_of("lan");
    let mut b = Batches {
        hosts,
        dir,
        lines: vec![Vec::new(); hosts.len()],
    };
    let v6 = spec.dual_stack;
    for h in hosts {
        b.push(&h.name, "link set dev lo up".into());
    }
    // Bridges first: the switch's, then each node's pod bridge.
    for br in ["br-lan", "br-ext"] {
        b.push(
            "lan",
            format!("link add name {br} type bridge stp_state 0 mcast_snooping 0"),
        );
        b.push("lan", format!("link set dev {br} up"));
    }
    for h in hosts {
        if let Role::Node(i) = h.role {
            b.push(
                &h.name,
                "link add name br-pod type bridge stp_state 0 mcast_snooping 0".into(),
            );
            let (g4, g6) = plan::pod_gateway(i);
            b.push(&h.name, format!("addr add {g4}/24 dev br-pod"));
            if v6 {
                b.push(&h.name, format!("addr add {g6}/64 dev br-pod nodad"));
            }
            b.push(&h.name, "link set dev br-pod up".into());
        }
    }
    b.run()?;
    // Port-side settings run after every veth exists.
    let mut ports = Batches {
        hosts,
        dir,
        lines: vec![Vec::new(); hosts.len()],
    };
    // veth pairs, created inside the host's namespace with the peer placed straight into the
    // switch (or the node, for pods): no end ever exists in the root namespace.
    for h in hosts {
        let (port_ns, port, bridge, dev) = match &h.role {
            Role::Switch | Role::Control => continue,
            Role::Router | Role::Node(_) | Role::LanClient(_) => {
                (switch.clone(), h.name.clone(), "br-lan", "eth0")
            }
            Role::ExternalClient(_) => (switch.clone(), format!("x-{}", h.name), "br-ext", "eth0"),
            Role::Pod { node, .. } => (
                ns_of(&format!("node{node}")),
                h.name.clone(),
                "br-pod",
                "eth0",
            ),
        };
        b.push(
            &h.name,
            format!("link add name {dev} type veth peer name {port} netns {port_ns}"),
        );
        addresses(&mut b, h, dev, 24, 64);
        b.push(&h.name, format!("link set dev {dev} up"));
        let owner = hosts
            .iter()
            .find(|x| x.netns == port_ns)
            .expect("port owner");
        ports.push(&owner.name, format!("link set dev {port} master {bridge}"));
        if matches!(h.role, Role::Pod { .. }) {
            // As CNI bridge plugins do (`hairpinMode`): with bridge netfilter, a pod's
            // connection to its own Service is DNATed back to it inside the bridge, which
            // must then be allowed to send the frame out of the port it came in on.
            ports.push(
                &owner.name,
                format!("link set dev {port} type bridge_slave hairpin on"),
            );
        }
        ports.push(&owner.name, format!("link set dev {port} up"));
    }
    // The router's external leg.
    b.push(
        "router",
        format!("link add name eth1 type veth peer name x-router netns {switch}"),
    );
    let (e4, e6) = plan::router_ext();
    b.push("router", format!("addr add {e4}/24 dev eth1"));
    if v6 {
        b.push("router", format!("addr add {e6}/64 dev eth1 nodad"));
    }
    b.push("router", "link set dev eth1 up".into());
    ports.push("lan", "link set dev x-router master br-ext".into());
    ports.push("lan", "link set dev x-router up".into());
    b.run()?;
    ports.run()?;
    routes(&mut b, hosts, spec)?;
    b.run()
}

/// Routes, the way a host-gateway CNI and a small data centre would have them: nodes reach
/// each other's pod CIDRs through the owning node; LAN clients reach pods through their node
/// and everything else through the router; the router knows the pod CIDRs; external clients
/// and pods use a default gateway.
fn routes(b: &mut Batches<'_>, hosts: &[Host], spec: &LabSpec) -> Result<()> {
    let (r4, r6) = plan::router_lan();
    let (e4, e6) = plan::router_ext();
    let v6 = spec.dual_stack;
    let pod_routes = |b: &mut Batches<'_>, host: &str, except: Option<u8>| {
        for j in (1..=spec.nodes).filter(|j| Some(*j) != except) {
            let (c4, c6) = plan::pod_cidr(j);
            let (n4, n6) = plan::node(j);
            b.push(host, format!("route add {c4} via {n4}"));
            if v6 {
                b.push(host, format!("route add {c6} via {n6}"));
            }
        }
    };
    let default = |b: &mut Batches<'_>, host: &str, g4: String, g6: String| {
        b.push(host, format!("route add 0.0.0.0/0 via {g4}"));
        if v6 {
            b.push(host, format!("route add ::/0 via {g6}"));
        }
    };
    for h in hosts {
        match &h.role {
            Role::Switch | Role::Control => {}
            Role::Router => pod_routes(b, &h.name, None),
            Role::Node(i) => {
                pod_routes(b, &h.name, Some(*i));
                default(b, &h.name, r4.to_string(), r6.to_string());
            }
            Role::LanClient(_) => {
                pod_routes(b, &h.name, None);
                default(b, &h.name, r4.to_string(), r6.to_string());
            }
            Role::ExternalClient(_) => default(b, &h.name, e4.to_string(), e6.to_string()),
            Role::Pod { node, .. } => {
                let (g4, g6) = plan::pod_gateway(*node);
                default(b, &h.name, g4.to_string(), g6.to_string());
            }
        }
    }
    Ok(())
}
