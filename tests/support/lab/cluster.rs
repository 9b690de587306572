//! The cluster side of a lab: the standalone manifest directory every FerroLB process reads,
//! the Node objects describing the lab's nodes, EndpointSlices for its pods, and the
//! controller and speaker processes.
//!
//! The controller runs in the `ctl` host (a namespace with only a loopback, so its metrics
//! port never collides with another lab's); each speaker runs in its node's namespace.

use super::error::{Result, io};
use super::host::Role;
use super::instance::{Lab, binary};
use super::plan;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The file the lab writes its Node objects to, in the manifest directory.
pub const NODES_FILE: &str = "lab-nodes.yaml";

/// A port of an EndpointSlice: name, port, protocol (`TCP`/`UDP`).
pub type EndpointPort<'a> = (&'a str, u16, &'a str);

pub(crate) fn write_nodes(lab: &Lab) -> Result<()> {
    let mut docs = Vec::new();
    for h in lab.nodes() {
        let Some(i) = h.node_index() else { continue };
        let (c4, c6) = plan::pod_cidr(i);
        let cidrs = if lab.spec().dual_stack {
            format!("[{c4}, \"{c6}\"]")
        } else {
            format!("[{c4}]")
        };
        let addrs: String = h
            .addrs()
            .iter()
            .map(|a| format!("  - {{type: InternalIP, address: \"{a}\"}}\n"))
            .collect();
        docs.push(format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n    kubernetes.io/hostname: {n}\n    kubernetes.io/os: linux\n\
             spec:\n  podCIDR: {c4}\n  podCIDRs: {cidrs}\nstatus:\n  addresses:\n{addrs}  - {{type: Hostname, address: {n}}}\n  \
             conditions:\n  - {{type: Ready, status: \"True\"}}\n",
            n = h.name
        ));
    }
    lab.write_manifest(NODES_FILE, &docs.join("---\n"))
}

/// Parse the addresses out of a Service status file the controller wrote.
fn status_ips(text: &str) -> Option<Vec<IpAddr>> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let ingress = v
        .get("status")?
        .get("loadBalancer")?
        .get("ingress")?
        .as_sequence()?;
    Some(
        ingress
            .iter()
            .filter_map(|i| i.get("ip")?.as_str()?.parse().ok())
            .collect(),
    )
}

impl Lab {
    /// The standalone manifest directory the controller and speakers read.
    pub fn manifests_dir(&self) -> PathBuf {
        self.dir.join("manifests")
    }

    /// Where the controller writes status (`<manifests>.status`).
    pub fn status_dir(&self) -> PathBuf {
        self.dir.join("manifests.status")
    }

    /// Write (or replace) a manifest file atomically, so a reader never sees half of it.
    pub fn write_manifest(&self, file: &str, yaml: &str) -> Result<()> {
        let dir = self.manifests_dir();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        // Hidden files are skipped by the readers, so the temporary name is never read.
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, yaml).map_err(io(&tmp))?;
        std::fs::rename(&tmp, dir.join(file)).map_err(io(dir.join(file)))
    }

    /// Remove a manifest file.
    pub fn remove_manifest(&self, file: &str) -> Result<()> {
        let p = self.manifests_dir().join(file);
        std::fs::remove_file(&p).map_err(io(&p))
    }

    /// EndpointSlices (one per address family) listing every pod with label `app`, ready,
    /// as the Service `namespace/service` with these ports would have them.
    pub fn endpoint_slices_yaml(
        &self,
        namespace: &str,
        service: &str,
        app: &str,
        ports: &[EndpointPort<'_>],
    ) -> String {
        let pods: Vec<&str> = self
            .pods()
            .into_iter()
            .filter(|p| matches!(&p.role, Role::Pod { app: a, .. } if a == app))
            .map(|p| p.name.as_str())
            .collect();
        self.endpoint_slices_for(namespace, service, &pods, ports)
    }

    /// [`Lab::endpoint_slices_yaml`] listing the named pods (whatever their label), ready: a
    /// test changes a Service's endpoints by writing the file again with other pods.
    pub fn endpoint_slices_for(
        &self,
        namespace: &str,
        service: &str,
        pods: &[&str],
        ports: &[EndpointPort<'_>],
    ) -> String {
        let pods: Vec<_> = self
            .pods()
            .into_iter()
            .filter(|p| pods.contains(&p.name.as_str()))
            .collect();
        let ports: String = ports
            .iter()
            .map(|(n, p, proto)| format!("- {{name: {n}, port: {p}, protocol: {proto}}}\n"))
            .collect();
        let mut docs = Vec::new();
        for (v6, family) in [(false, "IPv4"), (true, "IPv6")] {
            let eps: String = pods
                .iter()
                .filter_map(|p| {
                    let addr = p.addr(v6)?;
                    let node = match p.role {
                        Role::Pod { node, .. } => node,
                        _ => return None,
                    };
                    Some(format!(
                        "- addresses: [\"{addr}\"]\n  conditions: {{ready: true, serving: true, terminating: false}}\n  \
                         nodeName: node{node}\n  targetRef: {{kind: Pod, name: {}, namespace: {namespace}}}\n",
                        p.name
                    ))
                })
                .collect();
            if eps.is_empty() {
                continue;
            }
            docs.push(format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-{}\n  namespace: {namespace}\n  \
                 labels:\n    kubernetes.io/service-name: {service}\naddressType: {family}\nendpoints:\n{eps}ports:\n{ports}",
                family.to_ascii_lowercase()
            ));
        }
        docs.join("---\n")
    }

    /// Start `ferrolb-controller` on the manifest directory, in the `ctl` host, and wait until
    /// it is ready (`/readyz` on 127.0.0.1:7472 in that host: the first listing is reconciled).
    pub fn start_controller(&self) -> Result<String> {
        let bin = binary("ferrolb-controller")?;
        let (m, s) = (self.manifests_dir(), self.status_dir());
        let argv = [
            &*bin.to_string_lossy(),
            "--manifests",
            &*m.to_string_lossy(),
            "--status-dir",
            &*s.to_string_lossy(),
            "--metrics-addr",
            "127.0.0.1:7472",
        ];
        let name = self.spawn("controller", "ctl", &argv)?;
        self.wait_process(
            &name,
            "the controller to be ready (/readyz)",
            // Generous: a hang, not a slow start (the VM lab's emulated guest, two labs at once).
            Duration::from_secs(60),
            || self.readyz("ctl", 7472),
        )?;
        Ok(name)
    }

    /// `/readyz` on `host`'s 127.0.0.1:`port` answers 200 (else what it answered).
    fn readyz(&self, host: &str, port: u16) -> std::result::Result<(), String> {
        let localhost = IpAddr::from([127, 0, 0, 1]);
        match self.http_request(host, localhost, port, "/readyz") {
            Ok((200, _)) => Ok(()),
            Ok((status, body)) => Err(format!("{status} {body}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Start `ferrolb-speaker --node <node>` on the manifest directory, in the node's host.
    pub fn start_speaker(&self, node: &str) -> Result<String> {
        self.start_speaker_with(node, &[])
    }

    /// [`Lab::start_speaker`] with extra flags (`--dataplane userspace`, ...).
    pub fn start_speaker_with(&self, node: &str, extra: &[&str]) -> Result<String> {
        let bin = binary("ferrolb-speaker")?;
        let m = self.manifests_dir();
        let mut argv = vec![
            bin.to_string_lossy().into_owned(),
            "--node".into(),
            node.into(),
            "--manifests".into(),
            m.to_string_lossy().into_owned(),
            // The nodes share one filesystem: each remembers its IPVS virtual servers apart.
            "--ipvs-state-file".into(),
            m.with_file_name(format!("{node}.ipvs-owned"))
                .to_string_lossy()
                .into_owned(),
            // And its planned restarts (`--on-stop keep`) for its own next speaker.
            "--l2-restart-file".into(),
            m.with_file_name(format!("{node}.layer2-restart"))
                .to_string_lossy()
                .into_owned(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.spawn("speaker", node, &argv)
    }

    /// Restart `node`'s speaker as a DaemonSet's rolling update does: SIGTERM, wait until it
    /// exits by itself, start a new one with `flags`, and wait until it is ready (`/readyz`,
    /// the DaemonSet's readiness probe). Each wait is bounded by `limit`.
    pub fn restart_speaker(&self, node: &str, flags: &[&str], limit: Duration) -> Result<String> {
        let name = format!("speaker@{node}");
        self.signal(&name, rustix::process::Signal::TERM)?;
        self.wait_exit(&name, limit)?;
        self.forget_process(&name)?;
        let name = self.start_speaker_with(node, flags)?;
        self.wait_process(&name, "the speaker to be ready (/readyz)", limit, || {
            self.readyz(node, 7473)
        })?;
        Ok(name)
    }

    /// Start a speaker on every node.
    pub fn start_speakers(&self) -> Result<Vec<String>> {
        let names: Vec<String> = self.nodes().iter().map(|h| h.name.clone()).collect();
        names.iter().map(|n| self.start_speaker(n)).collect()
    }

    /// The addresses the controller wrote for a Service, if it has written any.
    pub fn service_ips(&self, namespace: &str, name: &str) -> Option<Vec<IpAddr>> {
        let p = self
            .status_dir()
            .join("services")
            .join(namespace)
            .join(format!("{name}.yaml"));
        status_ips(&std::fs::read_to_string(p).ok()?).filter(|v| !v.is_empty())
    }

    /// Wait until the controller has written addresses for a Service.
    pub fn wait_service_ips(
        &self,
        namespace: &str,
        name: &str,
        limit: Duration,
    ) -> Result<Vec<IpAddr>> {
        super::wait::wait_for(
            &format!(
                "addresses for Service {namespace}/{name} in {}",
                self.status_dir().display()
            ),
            limit,
            || self.service_ips(namespace, name),
        )
    }
}
