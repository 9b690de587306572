//! The IPVS path's table checked against the model: what `ipvsadm -Ln` shows on a node must be,
//! virtual server by virtual server, what `ferrolb-shared` says for the lab's manifests: the
//! table builder (`build_table`, over the Services with the addresses the controller wrote,
//! the EndpointSlices and the node's Node object) and the IPVS rules (`kernel::wanted`). Only
//! the connection counters are left out of the comparison; real servers at weight 0 (still
//! draining) are listed apart, since the model no longer has them.

use ferrolb_e2e::lab::Lab;
use ferrolb_shared::ipvs::build::{NodeView, Options, build_table};
use ferrolb_shared::ipvs::genl::{SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, ServiceId};
use ferrolb_shared::ipvs::kernel;
use ferrolb_shared::manifest::{ClusterObject, Manifest, parse_documents};
use ferrolb_shared::service::{self, Service};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A node's table: one line per virtual server (`TCP 10.96.0.10:7000 rr`, with the sh/mh
/// flags as `(mh-fallback,mh-port)` and `persistent <s>` when sticky), each with its real servers (`-> 10.244.1.2:7000 Masq 1`).
pub type IpvsLines = BTreeMap<String, Vec<String>>;

fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// What the model says node `i`'s IPVS table holds now.
pub fn model(lab: &Lab, i: u8) -> anyhow::Result<IpvsLines> {
    let node = format!("node{i}");
    let (mut services, mut slices, mut view) = (Vec::new(), Vec::new(), None);
    for entry in std::fs::read_dir(lab.manifests_dir())? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        for parsed in parse_documents(&path.display().to_string(), &text).objects {
            match parsed.manifest {
                Manifest::Cluster(ClusterObject::Service(s)) => {
                    services.push(with_status(lab, Arc::unwrap_or_clone(s)))
                }
                Manifest::Cluster(ClusterObject::EndpointSlice(s)) => {
                    slices.push(Arc::unwrap_or_clone(s))
                }
                Manifest::Cluster(ClusterObject::Node(n))
                    if n.metadata.name.as_deref() == Some(node.as_str()) =>
                {
                    let addresses = Arc::unwrap_or_clone(n)
                        .status
                        .and_then(|s| s.addresses)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|a| matches!(a.type_.as_str(), "InternalIP" | "ExternalIP"))
                        .filter_map(|a| a.address.parse().ok())
                        .collect::<std::collections::BTreeSet<IpAddr>>();
                    view = Some(NodeView {
                        name: node.clone(),
                        addresses: addresses.into_iter().collect(),
                    });
                }
                _ => {}
            }
        }
    }
    let view = view.ok_or_else(|| anyhow::anyhow!("no Node {node} in the lab's manifests"))?;
    let (table, _) = build_table(&services, &slices, &view, &Options::default());
    Ok(kernel::wanted(&table)
        .into_values()
        .map(|w| {
            let ServiceId::Addr { proto, addr, port } = w.service.id else {
                unreachable!("FerroLB makes no fwmark services")
            };
            let mut line = format!(
                "{} {} {}",
                proto.name().to_uppercase(),
                addr_port(addr, port),
                w.service.scheduler
            );
            let sched = &w.service.scheduler;
            let flags: Vec<String> = [(SVC_F_SCHED1, "fallback"), (SVC_F_SCHED2, "port")]
                .into_iter()
                .filter(|(bit, _)| w.service.flags & bit != 0)
                .map(|(_, name)| format!("{sched}-{name}"))
                .collect();
            if !flags.is_empty() {
                line.push_str(&format!(" ({})", flags.join(",")));
            }
            if w.service.flags & SVC_F_PERSISTENT != 0 {
                line.push_str(&format!(" persistent {}", w.service.timeout));
            }
            let dests = w
                .dests
                .values()
                .map(|d| format!("-> {} Masq {}", addr_port(d.addr, d.port), d.weight))
                .collect();
            (line, dests)
        })
        .collect())
}

/// A Service as the speaker sees it: with the addresses the controller wrote in its status.
fn with_status(lab: &Lab, mut svc: Service) -> Service {
    let key = service::service_key(&svc);
    if let Some(ips) = lab.service_ips(&key.namespace, &key.name) {
        svc.status_ips = ips.into();
    }
    svc
}

/// Node `i`'s IPVS table as `ipvsadm -Ln` prints it, in the form of [`model`]; real servers
/// at weight 0 apart (those draining).
pub fn read(lab: &Lab, i: u8) -> anyhow::Result<(IpvsLines, IpvsLines)> {
    let out = lab.exec(&format!("node{i}"), &["ipvsadm", "-Ln", "--sort"])?;
    let (mut live, mut draining) = (IpvsLines::new(), IpvsLines::new());
    let mut current: Option<String> = None;
    for line in out.lines().skip(3) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["->", dest, forward, weight, ..] => {
                let vs = current.clone().ok_or_else(|| {
                    anyhow::anyhow!("real server before a virtual server: {line}")
                })?;
                let entry = format!("-> {dest} {forward} {weight}");
                let into = if *weight == "0" {
                    &mut draining
                } else {
                    &mut live
                };
                into.entry(vs).or_default().push(entry);
            }
            [proto, vaddr, scheduler, rest @ ..] => {
                let mut vs = format!("{proto} {vaddr} {scheduler}");
                if let Some(flags) = rest.iter().find(|w| w.starts_with('(')) {
                    vs.push_str(&format!(" {flags}"));
                }
                if let Some(p) = rest.iter().position(|w| *w == "persistent") {
                    vs.push_str(&format!(" persistent {}", rest.get(p + 1).unwrap_or(&"?")));
                }
                live.entry(vs.clone()).or_default();
                current = Some(vs);
            }
            _ => anyhow::bail!("unexpected ipvsadm line {line:?} in\n{out}"),
        }
    }
    Ok((live, draining))
}

/// Waits (up to the data path's programming time) until node `i`'s IPVS table, draining real
/// servers aside, is what the model says; fails with both tables side by side.
pub fn assert_matches_model(lab: &Lab, i: u8) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + super::fixture::PROGRAMMED;
    loop {
        let want = model(lab, i)?;
        let (got, _) = read(lab, i)?;
        if got == want {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("node{i}: ipvsadm -Ln shows\n{got:#?}\nthe model says\n{want:#?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
