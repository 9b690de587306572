//! What the layer 2 lab tests share: a three-node lab with one LAN client, the controller and
//! a speaker on every node (nftables data path, gossip with a shared key), and ways to ask
//! who answers for an address: the speakers' own reports, ARP and NDP from the client, and
//! packet captures on the client's LAN side.

use super::forwarding;
use ferrolb_e2e::lab::{Lab, wait_for};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

pub const NODES: [&str; 3] = ["node1", "node2", "node3"];
pub const CLIENT: &str = "client1";

/// Every pool announced on the LAN by every node.
const L2: &str =
    "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan}\nspec: {}\n";

/// The gossip key every speaker reads (standalone mode reads Secrets from the manifests).
const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: ferrolb-memberlist, namespace: ferrolb-system}\n\
                      data: {secretkey: ZmVycm9sYi1sYWItZ29zc2lwLWtleS0wMTIzNDU2Nzg5}\n";

/// How long a new address may take to be announced on a loaded machine (controller, then
/// every speaker reads the status): generous, it only catches hangs.
pub const ANNOUNCED: Duration = Duration::from_secs(20);

/// A dual-stack LoadBalancer Service `web` over the `web` pods.
pub fn web_service(local: bool) -> String {
    named_service("web", local)
}

pub fn named_service(name: &str, local: bool) -> String {
    let policy = if local { "Local" } else { "Cluster" };
    forwarding::service(
        name,
        "LoadBalancer",
        None,
        "",
        &format!("  externalTrafficPolicy: {policy}\n"),
    )
}

/// The lab, its config (pool, advertisement, gossip key), the controller and a speaker on
/// every node (with `speaker_flags` added); returns once every speaker runs its gossip.
pub fn up(pods: &[(&str, u8)], speaker_flags: &[&str]) -> anyhow::Result<Lab> {
    up_on("nftables", pods, speaker_flags)
}

/// [`up`] with the speakers on data path `dataplane`.
pub fn up_on(dataplane: &str, pods: &[(&str, u8)], speaker_flags: &[&str]) -> anyhow::Result<Lab> {
    let lab = forwarding::lab(pods)?;
    lab.write_manifest("l2.yaml", L2)?;
    lab.write_manifest("secret.yaml", SECRET)?;
    lab.start_controller()?;
    for node in NODES {
        let mut flags = vec!["--dataplane", dataplane, "--l2-hold-down", "3s"];
        flags.extend(speaker_flags);
        lab.start_speaker_with(node, &flags)?;
    }
    for node in NODES {
        wait_for(&format!("gossip on {node}"), ANNOUNCED, || {
            let log = lab.log(&format!("speaker@{node}")).ok()?;
            log.contains("gossip started").then_some(())
        })?;
    }
    Ok(lab)
}

/// The IPv4 and IPv6 address the controller gave Service `name`.
pub fn ips(lab: &Lab, name: &str) -> anyhow::Result<(Ipv4Addr, Ipv6Addr)> {
    let ips = lab.wait_service_ips("default", name, ANNOUNCED)?;
    let v4 = ips.iter().find_map(|ip| match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    });
    let v6 = ips.iter().find_map(|ip| match ip {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    });
    match (v4, v6) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => anyhow::bail!("{name} has not both families: {ips:?}"),
    }
}

/// Where a speaker reports what it announces (standalone mode).
fn report(lab: &Lab, node: &str) -> PathBuf {
    let mut dir = lab.status_dir().into_os_string();
    dir.push(".speakers");
    PathBuf::from(dir).join(node)
}

/// Whether `node`'s speaker reports announcing `ip`.
pub fn announces(lab: &Lab, node: &str, ip: IpAddr) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(report(lab, node).join("announcements.yaml")).unwrap_or_default();
    Ok(text.contains(&format!("- ip: {ip}\n")))
}

/// The nodes whose speakers report announcing `ip`.
pub fn announcers(lab: &Lab, ip: IpAddr) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for node in NODES {
        if announces(lab, node, ip)? {
            out.insert(node.to_string());
        }
    }
    Ok(out)
}

/// The one node announcing `ip`, once there is exactly one (other than `not`).
pub fn owner_except(lab: &Lab, ip: IpAddr, not: Option<&str>) -> anyhow::Result<String> {
    Ok(wait_for(
        &format!("one node announcing {ip}"),
        ANNOUNCED,
        || {
            let a = announcers(lab, ip).ok()?;
            match a.iter().collect::<Vec<_>>().as_slice() {
                [one] if Some(one.as_str()) != not => Some((*one).clone()),
                _ => None,
            }
        },
    )?)
}

pub fn owner_of(lab: &Lab, ip: IpAddr) -> anyhow::Result<String> {
    owner_except(lab, ip, None)
}

/// The MACs answering an ARP request for `ip` from the client, once someone answers.
pub fn arp(lab: &Lab, ip: Ipv4Addr) -> anyhow::Result<Vec<String>> {
    Ok(wait_for(
        &format!("an ARP answer for {ip}"),
        ANNOUNCED,
        || {
            let macs = lab.arping(CLIENT, "eth0", ip, 1).ok()?;
            (!macs.is_empty()).then_some(macs)
        },
    )?)
}

/// The MACs answering a neighbor solicitation for `ip` from the client, once someone does.
pub fn ndp(lab: &Lab, ip: Ipv6Addr) -> anyhow::Result<Vec<String>> {
    Ok(wait_for(
        &format!("an NDP answer for {ip}"),
        ANNOUNCED,
        || {
            let macs = lab.ndisc(CLIENT, "eth0", ip).ok()?;
            (!macs.is_empty()).then_some(macs)
        },
    )?)
}

/// Send `count` ARP requests for `ip` from the client, 50 ms apart, and return, per request,
/// the MACs that replied to the client, as a capture on its LAN side saw them (gratuitous
/// announcements excluded). Exactly one MAC per request is the property layer 2 promises.
pub fn arp_exchanges(lab: &Lab, ip: Ipv4Addr, count: u32) -> anyhow::Result<Vec<Vec<String>>> {
    Ok(arp_exchanges_while(lab, ip, count, || Ok(()))?.1)
}

/// [`arp_exchanges`] with `during` run while the requests go out (a failure and its undoing,
/// say): a reply that comes late, to a request already answered by another node (a frozen
/// speaker answering its backlog), lands in the bucket of a later request and shows as two.
pub fn arp_exchanges_while<T>(
    lab: &Lab,
    ip: Ipv4Addr,
    count: u32,
    during: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Vec<Vec<String>>)> {
    let client_mac = lab.mac(CLIENT, "eth0")?;
    let capture = lab.capture(CLIENT, "eth0", "arp")?;
    let (out, result) = std::thread::scope(|scope| {
        let arping = scope.spawn(|| {
            let count = count.to_string();
            let ip = ip.to_string();
            lab.exec_output(
                CLIENT,
                &["arping", "-c", &count, "-W", "0.05", "-i", "eth0", &ip],
            )
        });
        let result = during();
        (arping.join(), result)
    });
    let out = out.map_err(|_| anyhow::anyhow!("the arping thread panicked"))??;
    let result = result?;
    // tcpdump writes a packet as soon as it sees it; give the last reply a moment.
    std::thread::sleep(Duration::from_millis(200));
    let lines = lab.stop_capture(capture)?;
    let exchanges = exchanges(&lines, ip, &client_mac);
    anyhow::ensure!(
        exchanges.len() >= count as usize,
        "{} requests seen for {count} sent; arping said {}\n{lines:#?}",
        exchanges.len(),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok((result, exchanges))
}

/// Group tcpdump -e lines into the client's requests for `ip` and the replies sent to it
/// (`client` is its MAC): one entry per request, with the `is-at` MACs that followed it.
pub fn exchanges(lines: &[String], ip: Ipv4Addr, client: &str) -> Vec<Vec<String>> {
    let request = format!("Request who-has {ip} tell ");
    let reply = format!("Reply {ip} is-at ");
    let mut out: Vec<Vec<String>> = Vec::new();
    for l in lines {
        if l.contains(&request) && l.starts_with_mac(client) {
            out.push(Vec::new());
        } else if let Some(at) = l.find(&reply)
            && l.contains(&format!("> {client},"))
            && let Some(mac) = l[at + reply.len()..].split([',', ' ']).next()
            && let Some(last) = out.last_mut()
        {
            last.push(mac.to_string());
        }
    }
    out
}

trait StartsWithMac {
    fn starts_with_mac(&self, mac: &str) -> bool;
}

impl StartsWithMac for String {
    /// tcpdump -e lines read `HH:MM:SS.frac <src mac> > <dst mac>, ...`.
    fn starts_with_mac(&self, mac: &str) -> bool {
        self.split_whitespace().nth(1) == Some(mac)
    }
}

/// `node`'s Events (standalone mode's events.log), once it has any.
pub fn events(lab: &Lab, node: &str) -> anyhow::Result<String> {
    let path = report(lab, node).join("events.log");
    Ok(wait_for(
        &format!("Events in {}", path.display()),
        ANNOUNCED,
        || {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|t| !t.is_empty())
        },
    )?)
}
