//! The lab: BIRD in the router (BFD on its side, for every session), node1 with FerroLB's
//! speaker (`--dataplane none --layer2 false`: BGP alone is measured, and its memory), node2
//! with GoBGP ([`crate::gobgp`]), the controller in `ctl`. IPv4 only: both daemons announce
//! /32s over an IPv4 session.
//!
//! FerroLB's configuration: pool `lat` (10.250.0.10-250, automatic) for single Services, pool
//! `big` (10.64.0.0/15, on request) for the bulk part, one `BGPPeer` `router` selecting node1
//! with hold time 9 s (and `bfdProfile: bfd300` when BFD is on), one advertisement of both.

use crate::birdc::Birdc;
use crate::{gobgp, now, poll};
use ferrolb_e2e::lab::{Lab, LabSpec, RouterKind, plan};
use std::net::IpAddr;
use std::time::Duration;

pub const NODE: &str = "node1";
/// BIRD's protocol for node1's IPv4 session.
pub const PROTO: &str = "node1_v4";
pub const SPEAKER: &str = "speaker@node1";
pub const HOLD_SECS: u64 = 9;
pub const KEEPALIVE_SECS: u64 = 3;
/// The pod node1's endpoints name.
pub const POD: &str = "node1-pod1";

/// How long anything may take to start or settle on a loaded 2-core machine.
pub const SLOW: Duration = Duration::from_secs(60);

const POOLS: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lat}\n\
                     spec: {addresses: [10.250.0.10-10.250.0.250]}\n---\n\
                     apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: big}\n\
                     spec: {addresses: [10.64.0.0/15], autoAssign: false}\n---\n\
                     apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\n\
                     spec: {ipAddressPools: [lat, big]}\n---\n\
                     apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: bfd300}\n\
                     spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}\n";

/// The `BGPPeer` of node1, with or without BFD.
fn peer(bfd: bool) -> String {
    let bfd = if bfd { "\n  bfdProfile: bfd300" } else { "" };
    format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router}}\n\
         spec:\n  myASN: {}\n  peerASN: {}\n  peerAddress: {}\n  holdTime: {HOLD_SECS}s\n  \
         nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {NODE}}}}}]{bfd}\n",
        plan::NODE_ASN,
        plan::ROUTER_ASN,
        plan::router_lan().0,
    )
}

/// A single-stack IPv4 LoadBalancer Service, from `pool` when given.
pub fn service(name: &str, pool: Option<&str>) -> String {
    let annotations = pool.map_or(String::new(), |p| {
        format!("  annotations: {{ferrolb.io/address-pool: {p}}}\n")
    });
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n{annotations}\
         spec:\n  type: LoadBalancer\n  selector: {{app: echo}}\n  externalTrafficPolicy: Cluster\n  \
         ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4]\n  \
         ports: [{{name: echo, port: 7000, targetPort: 7000, protocol: TCP}}]\n"
    )
}

/// The EndpointSlice of Service `name`: node1's pod, ready.
pub fn slices(lab: &Lab, name: &str) -> String {
    lab.endpoint_slices_for("default", name, &[POD], &[("echo", 7000, "TCP")])
}

pub struct Bench {
    pub lab: Lab,
    pub bird: Birdc,
    /// Whether the `BGPPeer` asks for BFD now.
    pub bfd: bool,
}

impl Bench {
    pub fn up() -> anyhow::Result<Bench> {
        note!(
            "lab: BIRD router, FerroLB in {NODE}, GoBGP in {}",
            gobgp::NODE
        );
        let lab = Lab::up(LabSpec {
            nodes: 2,
            lan_clients: 0,
            external_clients: 0,
            dual_stack: false,
            bfd: true,
            echo: false,
            ..LabSpec::default().router(Some(RouterKind::Bird))
        })?;
        lab.write_manifest("pools.yaml", POOLS)?;
        lab.write_manifest("peer.yaml", &peer(false))?;
        lab.start_controller()?;
        let socket = lab.router()?.dir.join("bird.ctl");
        let bird = Birdc::connect(&socket)?;
        let mut me = Bench {
            lab,
            bird,
            bfd: false,
        };
        me.start_speaker()?;
        gobgp::start(&me.lab)?;
        me.wait_established(PROTO)?;
        me.wait_established(gobgp::PROTO)?;
        Ok(me)
    }

    pub fn start_speaker(&self) -> anyhow::Result<()> {
        self.lab
            .start_speaker_with(NODE, &["--dataplane", "none", "--layer2", "false"])?;
        Ok(())
    }

    pub fn down(self) -> anyhow::Result<()> {
        Ok(self.lab.down()?)
    }

    /// Waits until BIRD's session `proto` is established.
    pub fn wait_established(&mut self, proto: &str) -> anyhow::Result<()> {
        let bird = &mut self.bird;
        poll(
            &format!("BIRD's session {proto} to be established"),
            Duration::from_millis(20),
            SLOW,
            || Ok(bird.protocol(proto)?.established.then_some(())),
        )
    }

    /// Waits until BIRD has `prefix` from `proto` (or, with `present == false`, no longer).
    pub fn wait_route(&mut self, proto: &str, prefix: &str, present: bool) -> anyhow::Result<f64> {
        let bird = &mut self.bird;
        poll(
            &format!("{prefix} from {proto} at BIRD: {present}"),
            Duration::from_millis(1),
            SLOW,
            || {
                let has = bird.sources(prefix)?.iter().any(|p| p == proto);
                Ok((has == present).then(now))
            },
        )
    }

    /// Switches the `BGPPeer`'s BFD on or off (a new session) and waits until the session is
    /// back, with BFD up at the speaker when on.
    pub fn set_bfd(&mut self, on: bool) -> anyhow::Result<()> {
        if self.bfd == on {
            return Ok(());
        }
        self.lab.write_manifest("peer.yaml", &peer(on))?;
        self.bfd = on;
        // The speaker restarts the session (a Cease; BIRD waits at least 1 s before the next
        // one): see it go down, so the old session is not taken for the new one.
        let bird = &mut self.bird;
        let down = poll(
            "the old session to go down",
            Duration::from_millis(5),
            Duration::from_secs(10),
            || Ok((!bird.protocol(PROTO)?.established).then_some(())),
        );
        if down.is_err() {
            // The speaker may reconnect within one look: the new session is awaited anyway.
            note!("did not see the old session go down; waiting for the new one");
        }
        self.wait_ready()?;
        // Let the new session's first moments (BFD coming up on both sides) pass.
        std::thread::sleep(Duration::from_secs(1));
        Ok(())
    }

    /// The session is established, with BFD up at the speaker when asked for.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        self.wait_established(PROTO)?;
        if self.bfd {
            let lab = &self.lab;
            poll(
                "BFD up at node1's speaker",
                Duration::from_millis(50),
                SLOW,
                || {
                    // Not answering yet (a speaker just started) is "not yet", not a failure.
                    let up = metric(lab, "ferrolb_bfd_session_up{peer=\"router\"}").ok();
                    Ok((up == Some(Some(1.0))).then_some(()))
                },
            )?;
        }
        Ok(())
    }
}

/// The value of metric `series` (name and labels, as printed) on node1's speaker.
pub fn metric(lab: &Lab, series: &str) -> anyhow::Result<Option<f64>> {
    let localhost = IpAddr::from([127, 0, 0, 1]);
    let (_, body) = lab.http_request(NODE, localhost, 7473, "/metrics")?;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok()))
}

/// VmRSS and VmHWM (peak) of a process, KiB.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let [rss, hwm] = ferrolb_e2e::bench::proc_status(pid, ["VmRSS:", "VmHWM:"])?;
    Ok((rss, hwm))
}
