//! `ferrolb-lab demo`: a 3-node lab, the example pools and Services, and what a client really
//! gets. Everything it reports is observed on the lab's network (status files, ARP/NDP
//! answers, the router's BGP table, echo answers); what FerroLB cannot do yet is said so.
//!
//! The demo grows as capabilities land: flip the matching field of [`CAPABILITIES`] when the
//! speaker learns to announce or forward, and `--check` starts to require it.

use crate::describe;
use ferrolb_e2e::lab::{Lab, LabSpec, PodSpec, Proto, RouterKind, plan};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What FerroLB can do today; `--check` requires exactly these.
struct Capabilities {
    /// The speaker answers ARP/NDP for layer-2 addresses.
    layer2: bool,
    /// The speaker advertises BGP addresses to the router.
    bgp: bool,
    /// Traffic to a LoadBalancer IP reaches a pod.
    forwarding: bool,
}

const CAPABILITIES: Capabilities = Capabilities {
    layer2: true,
    bgp: true,
    forwarding: true,
};

const POOLS: &str = include_str!("../../../examples/lab/pools.yaml");
const SERVICES: &str = include_str!("../../../examples/lab/services.yaml");
const GOSSIP: &str = include_str!("../../../examples/lab/gossip.yaml");

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Layer2,
    Bgp,
}

/// A demo Service (as in examples/lab/services.yaml): how it is announced, which client tries
/// it, its ports (name, port, target port, protocol), its pods' `app` label and names.
struct DemoService {
    name: &'static str,
    mode: Mode,
    client: &'static str,
    ports: &'static [(&'static str, u16, u16, Proto)],
    app: &'static str,
    pods: &'static [&'static str],
}

const DEMO: &[DemoService] = &[
    DemoService {
        name: "web",
        mode: Mode::Layer2,
        client: "client1",
        ports: &[
            ("http", 80, 8080, Proto::Http),
            ("echo", 7000, 7000, Proto::Tcp),
        ],
        app: "web",
        pods: &["web-a", "web-b"],
    },
    DemoService {
        name: "web-udp",
        mode: Mode::Layer2,
        client: "client1",
        ports: &[("echo-udp", 7000, 7000, Proto::Udp)],
        app: "web",
        pods: &["web-a", "web-b"],
    },
    DemoService {
        name: "api",
        mode: Mode::Bgp,
        client: "ext1",
        ports: &[("echo", 7000, 7000, Proto::Tcp)],
        app: "api",
        pods: &["api-a"],
    },
];

fn say(topic: &str, text: impl AsRef<str>) {
    println!("[{topic:>9}] {}", text.as_ref());
}

fn spec(router: RouterKind) -> LabSpec {
    let pod = |name: &str, node, app: &str| PodSpec {
        name: name.into(),
        node,
        app: app.into(),
    };
    LabSpec {
        pods: vec![
            pod("web-a", 1, "web"),
            pod("web-b", 2, "web"),
            pod("api-a", 3, "api"),
        ],
        ..LabSpec::with_nodes(3).router(Some(router))
    }
}

/// Results of one look at the network, for `--check` and the live summary.
#[derive(Default)]
struct Tally {
    expected: usize,
    got: usize,
    missing: Vec<String>,
}

impl Tally {
    fn expect(&mut self, ok: bool, what: String) {
        self.expected += 1;
        if ok {
            self.got += 1;
        } else {
            self.missing.push(what);
        }
    }
}

pub fn run(check: bool, router: RouterKind, failover: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    say(
        "lab",
        format!(
            "building 3 nodes, a {router} router, client1 on the LAN, ext1 behind the router..."
        ),
    );
    let lab = Lab::up(spec(router))?;
    say(
        "lab",
        format!("up in {:.1} s", started.elapsed().as_secs_f64()),
    );
    for line in describe(&lab).lines() {
        println!("            {line}");
    }

    lab.write_manifest("pools.yaml", POOLS)?;
    lab.write_manifest("services.yaml", SERVICES)?;
    lab.write_manifest("gossip.yaml", GOSSIP)?;
    // EndpointSlices, as Kubernetes would write them for the pods the Services select.
    for s in DEMO {
        let ports: Vec<_> = s
            .ports
            .iter()
            .map(|&(name, _, target, proto)| {
                (
                    name,
                    target,
                    if proto == Proto::Udp { "UDP" } else { "TCP" },
                )
            })
            .collect();
        lab.write_manifest(
            &format!("endpoints-{}.yaml", s.name),
            &lab.endpoint_slices_yaml("default", s.name, s.app, &ports),
        )?;
    }
    say(
        "manifests",
        format!(
            "pools lan (layer 2: {}, {}) and routed (BGP: {}, {}); Services web, web-udp (same IPs) and api; in {}",
            plan::L2_POOL_V4,
            plan::L2_POOL_V6,
            plan::BGP_POOL_V4,
            plan::BGP_POOL_V6,
            lab.manifests_dir().display()
        ),
    );
    lab.start_controller()?;
    say("controller", "running in host ctl");
    lab.start_speakers()?;
    say("speakers", "running on node1, node2, node3");

    let mut tally = Tally::default();
    let ips = allocations(&lab, &mut tally);
    static_routes(&lab, &ips)?;
    let note = if CAPABILITIES.bgp {
        ""
    } else {
        " (the speaker does not speak BGP yet)"
    };
    say("router", format!("{router}: {}{note}", sessions(&lab)));
    if CAPABILITIES.layer2 {
        wait_announced(&lab, &ips);
    }
    look(&lab, &ips, &mut tally, true)?;
    pods(&lab, &mut tally)?;
    let not_yet: Vec<&str> = [
        (!CAPABILITIES.layer2).then_some("layer-2 announcements"),
        (!CAPABILITIES.bgp).then_some("BGP announcements"),
        (!CAPABILITIES.forwarding).then_some("forwarding to pods"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if failover {
        show_failover(&lab, &ips, &mut tally)?;
    }
    summary(&tally, &not_yet);
    if check {
        lab.down()?;
        return Ok(if tally.missing.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    say(
        "live",
        "the lab stays up; Ctrl-C tears it down. A summary follows every 10 s.",
    );
    loop {
        std::thread::sleep(Duration::from_secs(10));
        let mut t = Tally::default();
        let ips = current_ips(&lab);
        look(&lab, &ips, &mut t, false)?;
        say(
            "live",
            format!(
                "{} Services allocated; {}/{} expected answers; router: {}",
                ips.len(),
                t.got,
                t.expected,
                sessions(&lab)
            ),
        );
    }
}

/// Until a way of announcing exists, route each address to a node by hand, so the data path
/// can be shown: layer-2 addresses from the LAN client to node1, BGP addresses from the
/// router to the node of the Service's pod (its traffic policy is Local).
fn static_routes(lab: &Lab, ips: &BTreeMap<&'static str, Vec<IpAddr>>) -> anyhow::Result<()> {
    for s in DEMO {
        let announced = match s.mode {
            Mode::Layer2 => CAPABILITIES.layer2,
            Mode::Bgp => CAPABILITIES.bgp,
        };
        if announced || !CAPABILITIES.forwarding {
            continue;
        }
        let (host, node, why) = match s.mode {
            Mode::Layer2 => ("client1", 1, "until layer 2 announces it"),
            Mode::Bgp => ("router", 3, "until BGP announces it"),
        };
        for ip in ips.get(s.name).into_iter().flatten() {
            let (v4, v6) = plan::node(node);
            let (via, len) = if ip.is_ipv4() {
                (IpAddr::from(v4), 32)
            } else {
                (IpAddr::from(v6), 128)
            };
            lab.exec(
                host,
                &[
                    "ip",
                    "route",
                    "replace",
                    &format!("{ip}/{len}"),
                    "via",
                    &via.to_string(),
                ],
            )?;
            say(
                "route",
                format!(
                    "default/{} {}: routed by hand from {host} to node{node} ({why})",
                    s.name,
                    bracket(*ip)
                ),
            );
        }
    }
    Ok(())
}

fn current_ips(lab: &Lab) -> BTreeMap<&'static str, Vec<IpAddr>> {
    DEMO.iter()
        .filter_map(|s| Some((s.name, lab.service_ips("default", s.name)?)))
        .collect()
}

/// Wait for every demo Service's addresses, printing each as it appears.
fn allocations(lab: &Lab, tally: &mut Tally) -> BTreeMap<&'static str, Vec<IpAddr>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: BTreeMap<&'static str, Vec<IpAddr>> = BTreeMap::new();
    while seen.len() < DEMO.len() && Instant::now() < deadline {
        for (name, ips) in current_ips(lab) {
            if seen.get(name) != Some(&ips) {
                let s = DEMO.iter().find(|s| s.name == name).expect("demo service");
                let (pool, how) = match s.mode {
                    Mode::Layer2 => ("lan", "layer 2"),
                    Mode::Bgp => ("routed", "BGP"),
                };
                let list: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
                say(
                    "allocated",
                    format!(
                        "default/{name}: {} from pool {pool} ({how})",
                        list.join(", ")
                    ),
                );
                seen.insert(name, ips);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in DEMO {
        let ips = seen.get(s.name);
        let both =
            ips.is_some_and(|v| v.iter().any(IpAddr::is_ipv4) && v.iter().any(IpAddr::is_ipv6));
        if !both {
            say(
                "allocated",
                format!("default/{}: NO dual-stack allocation within 20 s", s.name),
            );
        }
        tally.expect(
            both,
            format!("an IPv4 and an IPv6 address for default/{}", s.name),
        );
    }
    seen
}

/// Give the speakers time to find each other and announce the layer-2 addresses (at most
/// 15 s; `look` then reports whatever is still missing).
fn wait_announced(lab: &Lab, ips: &BTreeMap<&'static str, Vec<IpAddr>>) {
    let started = Instant::now();
    let l2: Vec<IpAddr> = DEMO
        .iter()
        .filter(|s| s.mode == Mode::Layer2)
        .flat_map(|s| ips.get(s.name).into_iter().flatten().copied())
        .collect();
    let answered = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => lab
            .arping_once("client1", "eth0", *a, Duration::from_millis(100))
            .is_ok_and(|m| !m.is_empty()),
        IpAddr::V6(a) => lab
            .ndisc("client1", "eth0", *a)
            .is_ok_and(|m| !m.is_empty()),
    };
    while started.elapsed() < Duration::from_secs(15) && !l2.iter().all(answered) {
        std::thread::sleep(Duration::from_millis(50));
    }
    say(
        "speakers",
        format!(
            "layer-2 addresses answered {:.1} s after the speakers started",
            started.elapsed().as_secs_f64()
        ),
    );
    if !CAPABILITIES.bgp {
        return;
    }
    let routed: Vec<IpAddr> = DEMO
        .iter()
        .filter(|s| s.mode == Mode::Bgp)
        .flat_map(|s| ips.get(s.name).into_iter().flatten().copied())
        .collect();
    let in_table = || {
        let routes = lab.router().and_then(|r| r.routes()).unwrap_or_default();
        routed
            .iter()
            .all(|ip| routes.iter().any(|r| r.prefix.contains(ip)))
    };
    while started.elapsed() < Duration::from_secs(30) && !in_table() {
        std::thread::sleep(Duration::from_millis(50));
    }
    say(
        "speakers",
        format!(
            "BGP addresses in the router's table {:.1} s after the speakers started",
            started.elapsed().as_secs_f64()
        ),
    );
}

/// Kill the speaker announcing `web`'s IPv4 address (SIGKILL, as a crash) while the client
/// asks for it every 10 ms, and show who takes over and how long nobody answered.
fn show_failover(
    lab: &Lab,
    ips: &BTreeMap<&'static str, Vec<IpAddr>>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let (macs, _) = who(lab);
    let Some(IpAddr::V4(ip)) = ips
        .get("web")
        .and_then(|v| v.iter().find(|i| i.is_ipv4()))
        .copied()
    else {
        anyhow::bail!("web has no IPv4 address to fail over");
    };
    let owner_mac = lab
        .arping("client1", "eth0", ip, 1)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("nobody answers ARP for {ip}"))?;
    let owner = macs.get(&owner_mac).cloned().unwrap_or(owner_mac.clone());
    say(
        "failover",
        format!("{owner} announces {ip}; killing its speaker (SIGKILL)..."),
    );
    let killed = Instant::now();
    lab.kill_process(&format!("speaker@{owner}"))?;
    let deadline = killed + Duration::from_secs(10);
    let mut taken = None;
    while Instant::now() < deadline {
        let answered = lab.arping_once("client1", "eth0", ip, Duration::from_millis(50))?;
        if let [mac] = answered.as_slice()
            && *mac != owner_mac
        {
            taken = Some((
                killed.elapsed(),
                macs.get(mac).cloned().unwrap_or(mac.clone()),
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = lab.probe_with_timeout(
        "client1",
        Proto::Http,
        ip.into(),
        80,
        Duration::from_secs(2),
    );
    match (&taken, &r) {
        (Some((after, node)), Ok(a)) => say(
            "failover",
            format!(
                "{node} answers ARP for {ip} {:.0} ms after the kill; client1 -> http: answered by pod {}",
                after.as_secs_f64() * 1000.0,
                a.pod
            ),
        ),
        (None, _) => say("failover", format!("NOBODY took {ip} over within 10 s")),
        (_, Err(e)) => say(
            "failover",
            format!("taken over, but http got NO ANSWER: {e}"),
        ),
    }
    tally.expect(
        taken.is_some() && r.is_ok(),
        format!("another node takes {ip} over after {owner}'s speaker is killed"),
    );
    lab.forget_process(&format!("speaker@{owner}"))?;
    lab.start_speaker(&owner)?;
    say(
        "failover",
        format!(
            "{owner}'s speaker restarted: it is held down for 10 s before it may take addresses back"
        ),
    );
    Ok(())
}

/// Node names by MAC (for ARP/NDP answers) and by LAN address (for BGP next hops).
fn who(lab: &Lab) -> (BTreeMap<String, String>, BTreeMap<IpAddr, String>) {
    let mut macs = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    for n in lab.nodes() {
        if let Ok(m) = lab.mac(&n.name, "eth0") {
            macs.insert(m, n.name.clone());
        }
        for a in n.addrs() {
            addrs.insert(a, n.name.clone());
        }
    }
    (macs, addrs)
}

/// Who announces each address, and what its client gets back.
fn look(
    lab: &Lab,
    ips: &BTreeMap<&'static str, Vec<IpAddr>>,
    tally: &mut Tally,
    print: bool,
) -> anyhow::Result<()> {
    let (macs, addrs) = who(lab);
    let routes = lab.router().and_then(|r| r.routes()).unwrap_or_default();
    let quiet = |topic: &str, text: String| {
        if print {
            say(topic, text)
        }
    };
    for s in DEMO {
        for &ip in ips.get(s.name).into_iter().flatten() {
            let announcers: Vec<String> = match s.mode {
                Mode::Layer2 => {
                    let answered = match ip {
                        IpAddr::V4(a) => lab.arping("client1", "eth0", a, 1)?,
                        IpAddr::V6(a) => lab.ndisc("client1", "eth0", a)?,
                    };
                    answered
                        .iter()
                        .map(|m| {
                            macs.get(m)
                                .cloned()
                                .unwrap_or_else(|| format!("unknown MAC {m}"))
                        })
                        .collect()
                }
                Mode::Bgp => routes
                    .iter()
                    .filter(|r| r.prefix.contains(&ip))
                    .filter_map(|r| r.next_hop)
                    .map(|h| addrs.get(&h).cloned().unwrap_or_else(|| h.to_string()))
                    .collect(),
            };
            let (how, can) = match s.mode {
                Mode::Layer2 => (
                    if ip.is_ipv4() { "ARP" } else { "NDP" },
                    CAPABILITIES.layer2,
                ),
                Mode::Bgp => ("BGP", CAPABILITIES.bgp),
            };
            if announcers.is_empty() {
                let why = match s.mode {
                    Mode::Layer2 => "NO node answers ARP/NDP for it",
                    Mode::Bgp => "the router has no route to it",
                };
                quiet(
                    "announce",
                    format!("default/{} {}: {why}", s.name, bracket(ip)),
                );
            } else {
                let by = announcers.join(", ");
                quiet(
                    "announce",
                    format!(
                        "default/{} {}: announced by {by} over {how}",
                        s.name,
                        bracket(ip)
                    ),
                );
            }
            if can {
                tally.expect(
                    !announcers.is_empty(),
                    format!("{how} announcement of {ip}"),
                );
            }
            for &(_, port, _, proto) in s.ports {
                let r =
                    lab.probe_with_timeout(s.client, proto, ip, port, Duration::from_millis(700));
                let text = match &r {
                    Ok(a) => format!(
                        "answered by pod {}, which saw client {}",
                        a.pod,
                        a.client.ip()
                    ),
                    Err(_) if !CAPABILITIES.forwarding => {
                        "no answer (expected until announcing and forwarding land)".to_string()
                    }
                    Err(e) => format!("NO ANSWER: {e}"),
                };
                quiet(
                    "client",
                    format!(
                        "{} -> {}:{port} {}: {text}",
                        s.client,
                        bracket(ip),
                        proto.name()
                    ),
                );
                if CAPABILITIES.forwarding {
                    let ok = r.as_ref().is_ok_and(|a| s.pods.contains(&a.pod.as_str()));
                    tally.expect(
                        ok,
                        format!(
                            "{} -> {ip}:{port} answered by one of {:?}",
                            s.client, s.pods
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

/// The pods answer both clients directly (through their node), over both families: this is
/// the lab's own network, and it works today.
fn pods(lab: &Lab, tally: &mut Tally) -> anyhow::Result<()> {
    for pod in lab.pods() {
        for ip in pod.addrs() {
            for client in ["client1", "ext1"] {
                let r = lab.probe_with_timeout(
                    client,
                    Proto::Tcp,
                    ip,
                    plan::ECHO_TCP,
                    Duration::from_secs(2),
                );
                let ok = r.as_ref().is_ok_and(|a| {
                    a.pod == pod.name
                        && Some(a.client.ip())
                            == lab.host(client).ok().and_then(|h| h.addr(ip.is_ipv6()))
                });
                let text = match &r {
                    Ok(a) => format!("answered by {}, which saw client {}", a.pod, a.client.ip()),
                    Err(e) => format!("NO ANSWER: {e}"),
                };
                say("pod", format!("{client} -> {} {ip}: {text}", pod.name));
                tally.expect(ok, format!("{client} -> pod {} at {ip}", pod.name));
            }
        }
    }
    Ok(())
}

fn bracket(ip: IpAddr) -> String {
    if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn sessions(lab: &Lab) -> String {
    match lab.router().and_then(|r| r.sessions()) {
        Ok(s) => format!(
            "{}/{} BGP sessions established",
            s.iter().filter(|s| s.established).count(),
            s.len()
        ),
        Err(e) => format!("cannot read its sessions: {e}"),
    }
}

fn summary(tally: &Tally, not_yet: &[&str]) {
    if tally.missing.is_empty() {
        say(
            "check",
            format!("ok: all {} expected answers arrived", tally.expected),
        );
    } else {
        say(
            "check",
            format!(
                "FAILED: {} of {} expected answers arrived; missing:",
                tally.got, tally.expected
            ),
        );
        for m in &tally.missing {
            say("check", format!("  - {m}"));
        }
    }
    if !not_yet.is_empty() {
        say(
            "not yet",
            format!(
                "FerroLB does not do these yet, so the demo does not expect them: {}",
                not_yet.join(", ")
            ),
        );
    }
}
