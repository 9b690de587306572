//! FerroLB in the lab: three nodes with a pod each (app `web`, the lab's echo server), two LAN
//! clients, the controller, and a speaker on every node with `--dataplane nftables
//! --l2-hold-down <hold-down>` and gossip keyed by the `ferrolb-memberlist` Secret manifest.
//!
//! The address under test is 10.100.0.200, the first of pool `lan`, given to Service
//! `bench`: UDP port 7000 to the pods, `externalTrafficPolicy: Local`, so whichever node
//! announces it serves it from its own pod (with `Cluster`, a node taking over could keep
//! sending the client's flow to the pod behind the node that was cut off). Pool `big`
//! (10.100.16.0/20, only on request) is announced by node3 alone, for [`crate::scale`].

use crate::failover::{System, Way, wait};
use ferrolb_e2e::lab::{Lab, LabSpec};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

pub const NODES: [&str; 3] = ["node1", "node2", "node3"];
pub const PODS: [&str; 3] = ["web-a", "web-b", "web-c"];
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 200);
/// The node that announces every address of pool `big`.
pub const BIG_NODE: &str = "node3";

const POOLS: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan}\n\
                     spec: {addresses: [10.100.0.200-10.100.0.250]}\n---\n\
                     apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: big}\n\
                     spec: {addresses: [10.100.16.0/20], autoAssign: false, avoidBuggyIPs: true}\n";

const L2: &str = "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan}\n\
                  spec: {ipAddressPools: [lan]}\n---\n\
                  apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: big}\n\
                  spec:\n  ipAddressPools: [big]\n  nodeSelectors:\n  - matchLabels: {kubernetes.io/hostname: node3}\n";

/// The gossip key every speaker reads (standalone mode reads Secrets from the manifests).
const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: ferrolb-memberlist, namespace: ferrolb-system}\n\
                      data: {secretkey: ZmVycm9sYi1sYWItZ29zc2lwLWtleS0wMTIzNDU2Nzg5}\n";

/// After a node is back: its hold-down, then the hand-back (250 ms) and a margin.
const SETTLE_MARGIN: Duration = Duration::from_millis(600);

/// How long anything may take to be announced or to start on a loaded machine.
pub const SLOW_LIMIT: Duration = Duration::from_secs(30);

/// A LoadBalancer Service `name` over the `web` pods' UDP echo port; `pool` asks for a pool.
pub fn service(name: &str, local: bool, pool: Option<&str>) -> String {
    let policy = if local { "Local" } else { "Cluster" };
    let annotations = pool.map_or(String::new(), |p| {
        format!("  annotations: {{ferrolb.io/address-pool: {p}}}\n")
    });
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n{annotations}\
         spec:\n  type: LoadBalancer\n  selector: {{app: web}}\n  externalTrafficPolicy: {policy}\n  \
         ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4]\n  \
         ports: [{{name: echo-udp, port: 7000, targetPort: 7000, protocol: UDP}}]\n"
    )
}

/// The EndpointSlice of Service `name`: every pod, ready, on the UDP echo port.
pub fn slices(lab: &Lab, name: &str) -> String {
    lab.endpoint_slices_for("default", name, &PODS, &[("echo-udp", 7000, "UDP")])
}

/// The addresses `node`'s speaker reports announcing (standalone mode's announcements.yaml).
pub fn announced(lab: &Lab, node: &str) -> Vec<IpAddr> {
    let mut dir = lab.status_dir().into_os_string();
    dir.push(".speakers");
    let path = PathBuf::from(dir).join(node).join("announcements.yaml");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ip: ")?.trim().parse().ok())
        .collect()
}

pub struct FerroLb {
    pub lab: Lab,
    flags: Vec<String>,
    /// Flags added to `flags` (a gossip timing preset, [`crate::timing`]).
    extra: Vec<String>,
    hold_down: Duration,
    /// The name in the table, if not "FerroLB".
    pub label: Option<String>,
}

impl FerroLb {
    pub fn up(settings: &crate::Settings) -> anyhow::Result<FerroLb> {
        note!("FerroLB lab: 3 nodes, 2 LAN clients, controller, speakers");
        let mut spec = LabSpec {
            nodes: 3,
            lan_clients: 2,
            external_clients: 0,
            dual_stack: false,
            router: None,
            ..LabSpec::default()
        };
        for (i, pod) in PODS.iter().enumerate() {
            spec = spec.pod(pod, i as u8 + 1, "web");
        }
        let lab = Lab::up(spec)?;
        lab.write_manifest("pools.yaml", POOLS)?;
        lab.write_manifest("l2.yaml", L2)?;
        lab.write_manifest("secret.yaml", SECRET)?;
        lab.start_controller()?;
        let hold_down = settings.hold_down;
        let mut flags = vec![
            "--dataplane".to_string(),
            "nftables".into(),
            "--l2-hold-down".into(),
            format!("{}ms", hold_down.as_millis()),
        ];
        flags.extend(settings.speaker_flags.iter().cloned());
        let mut me = FerroLb {
            lab,
            flags,
            extra: Vec::new(),
            hold_down,
            label: None,
        };
        for node in NODES {
            me.start_speaker(node)?;
        }
        // Endpoints first: a Local Service is announced only where a pod serves it.
        me.lab
            .write_manifest("bench-slices.yaml", &slices(&me.lab, "bench"))?;
        me.lab
            .write_manifest("bench.yaml", &service("bench", true, None))?;
        let ips = me.lab.wait_service_ips("default", "bench", SLOW_LIMIT)?;
        anyhow::ensure!(
            ips == [IpAddr::V4(VIP)],
            "Service bench got {ips:?}, not {VIP}"
        );
        me.owner()?;
        Ok(me)
    }

    fn start_speaker(&self, node: &str) -> anyhow::Result<()> {
        let flags: Vec<&str> = self
            .flags
            .iter()
            .chain(&self.extra)
            .map(String::as_str)
            .collect();
        let name = self.lab.start_speaker_with(node, &flags)?;
        self.lab.wait_log(&name, "gossip started", SLOW_LIMIT)?;
        Ok(())
    }

    /// Restart every speaker (SIGKILL, then a new one) with `extra` flags, and wait until one
    /// announces the address again.
    pub fn restart_all(&mut self, extra: &[String]) -> anyhow::Result<()> {
        self.extra = extra.to_vec();
        for node in NODES {
            let speaker = format!("speaker@{node}");
            self.lab.kill_process(&speaker)?;
            self.lab.forget_process(&speaker)?;
            self.start_speaker(node)?;
        }
        std::thread::sleep(self.hold_down + SETTLE_MARGIN);
        self.owner().map(drop)
    }

    /// `node`'s speaker reports announcing the address under test.
    pub fn announces_vip(&self, node: &str) -> bool {
        announced(&self.lab, node).contains(&IpAddr::V4(VIP))
    }

    pub fn down(self) -> anyhow::Result<()> {
        Ok(self.lab.down()?)
    }

    fn announcers(&self) -> Vec<&'static str> {
        NODES
            .into_iter()
            .filter(|n| announced(&self.lab, n).contains(&IpAddr::V4(VIP)))
            .collect()
    }
}

impl System for FerroLb {
    fn name(&self) -> String {
        self.label.clone().unwrap_or_else(|| "FerroLB".into())
    }

    fn lab(&self) -> &Lab {
        &self.lab
    }

    fn vip(&self) -> Ipv4Addr {
        VIP
    }

    fn owner(&mut self) -> anyhow::Result<String> {
        let owner = wait(
            || match self.announcers().as_slice() {
                [one] => Some(one.to_string()),
                _ => None,
            },
            SLOW_LIMIT,
            &format!("single speaker report announcing {VIP}"),
        )?;
        crate::failover::answered_by_alone(&self.lab, VIP, owner)
    }

    fn fail(&mut self, node: &str, way: Way) -> anyhow::Result<()> {
        let speaker = format!("speaker@{node}");
        match way {
            Way::Kill => self.lab.kill_process(&speaker)?,
            Way::Pause => self.lab.pause_process(&speaker)?,
            Way::Link => self.lab.set_link(node, "eth0", false)?,
        }
        Ok(())
    }

    fn undo(&mut self, node: &str, way: Way) -> anyhow::Result<()> {
        let speaker = format!("speaker@{node}");
        match way {
            Way::Kill => {
                self.lab.forget_process(&speaker)?;
                self.start_speaker(node)?;
            }
            Way::Pause => self.lab.resume_process(&speaker)?,
            Way::Link => self.lab.set_link(node, "eth0", true)?,
        }
        Ok(())
    }

    fn settle(&mut self, _node: &str, _way: Way) -> anyhow::Result<()> {
        // The node is back (a restarted speaker logged "gossip started" in `undo`): it is held
        // down, then may take the address back after a handover (250 ms); then one announces.
        std::thread::sleep(self.hold_down + SETTLE_MARGIN);
        self.owner().map(drop)
    }

    fn takeover_limit(&self) -> Duration {
        Duration::from_secs(10)
    }
}
