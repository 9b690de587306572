//! `ferrolb-controller status` on a lab run in standalone mode: three speakers announcing one
//! Service over layer 2 and advertising another to a real BIRD over BGP; the report, read from
//! the controller's status directory and the speakers' report directories beside it, says
//! which node answers ARP for the first, which peers receive the second from every node, that
//! every BGP session is Established with an uptime, and every component's configuration is
//! Valid; a broken manifest then shows up as Invalid with its error, for the controller and
//! for each speaker.
//!
//! Needs root (namespaces) and BIRD (bird2) besides the lab's usual tools.

#[allow(dead_code)]
#[path = "lab_forwarding/fixture.rs"]
mod forwarding;

use ferrolb_e2e::binary;
use ferrolb_e2e::lab::{Lab, LabSpec, RouterKind, plan, wait_until};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(40);
const NODES: [&str; 3] = ["node1", "node2", "node3"];

fn config() -> String {
    let (r4, _) = plan::router_lan();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: ferrolb-memberlist, namespace: ferrolb-system}\n\
                  data: {secretkey: ZmVycm9sYi1sYWItZ29zc2lwLWtleS0wMTIzNDU2Nzg5}\n";
    [
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\n\
             spec: {{addresses: ['{}', '{}'], autoAssign: false}}\n",
            plan::L2_POOL_V4,
            plan::L2_POOL_V6
        ),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bgp}}\n\
             spec: {{addresses: ['{}', '{}'], autoAssign: false}}\n",
            plan::BGP_POOL_V4,
            plan::BGP_POOL_V6
        ),
        "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan}\n\
         spec: {ipAddressPools: [lan]}\n"
            .to_string(),
        "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp}\n\
         spec: {ipAddressPools: [bgp]}\n"
            .to_string(),
        format!(
            "apiVersion: ferrolb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router-v4}}\n\
             spec: {{myASN: {}, peerASN: {}, peerAddress: '{r4}', holdTime: 9s}}\n",
            plan::NODE_ASN,
            plan::ROUTER_ASN
        ),
        secret.to_string(),
    ]
    .join("---\n")
}

fn service(lab: &Lab, name: &str, pool: &str) -> anyhow::Result<()> {
    let meta = format!("  annotations: {{ferrolb.io/address-pool: {pool}}}\n");
    let yaml = forwarding::service(name, "LoadBalancer", None, &meta, "");
    forwarding::endpoints(lab, name, &["node1-pod1"])?;
    lab.write_manifest(&format!("{name}.yaml"), &yaml)?;
    Ok(())
}

/// `ferrolb-controller status --status-dir ... -o FORMAT` on the lab's status directory.
fn status(lab: &Lab, format: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new(binary("ferrolb-controller"))
        .args(["status", "--status-dir"])
        .arg(lab.status_dir())
        .args(["-o", format])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The JSON report now; `Err` (a reason to wait) before the status files are all there.
fn report_now(lab: &Lab) -> Result<Value, String> {
    let text = status(lab, "json").map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn service_entry<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["services"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

/// Everything the lab is doing is in the report (`Err` says what is still missing).
fn complete(report: &Value) -> Result<(), String> {
    let config = report["configuration"]
        .as_array()
        .ok_or("no configuration")?;
    let valid = config.iter().filter(|c| c["result"] == "Valid").count();
    if valid != 4 {
        return Err(format!("{valid} of 4 components Valid: {config:?}"));
    }
    // Each address is elected on its own: announced by exactly one node, whichever.
    let l2 = service_entry(report, "l2web").ok_or("no l2web")?;
    let mut announced: Vec<String> = l2["layer2Nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|n| n["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let mut addresses: Vec<String> =
        serde_json::from_value(l2["addresses"].clone()).unwrap_or_default();
    announced.sort();
    addresses.sort();
    if addresses.is_empty() || announced != addresses {
        return Err(format!(
            "l2web's addresses are not each announced once: {l2}"
        ));
    }
    let bgp = service_entry(report, "bgpweb").ok_or("no bgpweb")?;
    let advertising = bgp["bgp"].as_array().map(Vec::len).unwrap_or(0);
    if advertising != 3 {
        return Err(format!("bgpweb advertised by {advertising} nodes: {bgp}"));
    }
    let sessions = report["bgpSessions"].as_array().ok_or("no sessions")?;
    let up = sessions
        .iter()
        .filter(|s| s["bgpStatus"] == "Established" && s["uptimeSeconds"].is_u64())
        .count();
    if up != 3 {
        return Err(format!("{up} of 3 sessions Established: {sessions:?}"));
    }
    Ok(())
}

#[test]
fn status_reports_what_a_lab_run_announces_advertises_and_accepts() -> anyhow::Result<()> {
    let lab = Lab::up(LabSpec {
        lan_clients: 0,
        external_clients: 0,
        echo: false,
        ..LabSpec::default().router(Some(RouterKind::Bird))
    })?;
    lab.write_manifest("config.yaml", &config())?;
    lab.start_controller()?;
    for node in NODES {
        lab.start_speaker_with(node, &["--dataplane", "none"])?;
    }
    service(&lab, "l2web", "lan")?;
    service(&lab, "bgpweb", "bgp")?;
    let report: Value = wait_until("a complete status report", LIMIT, || {
        Ok(report_now(&lab).and_then(|r| complete(&r).map(|()| r)))
    })?;

    // The figures behind it, checked against their sources.
    let l2 = service_entry(&report, "l2web").unwrap();
    let ips = lab.wait_service_ips("default", "l2web", LIMIT)?;
    let mut listed: Vec<String> = serde_json::from_value(l2["addresses"].clone())?;
    let mut want: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    listed.sort();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(l2["pool"], "lan");
    for n in l2["layer2Nodes"].as_array().unwrap() {
        assert!(NODES.contains(&n["node"].as_str().unwrap()), "{l2}");
    }
    let bgp = service_entry(&report, "bgpweb").unwrap();
    for node in bgp["bgp"].as_array().unwrap() {
        assert_eq!(node["peers"], serde_json::json!(["router-v4"]), "{bgp}");
    }
    let lan = report["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lan")
        .unwrap();
    assert_eq!(lan["capacityIPv4"], 51, "10.100.0.200-250: {lan}");
    assert_eq!(lan["inUseIPv4"], 1, "{lan}");
    let session = &report["bgpSessions"][0];
    assert_eq!(session["peer"], "router-v4");
    assert_eq!(session["peerAddress"], plan::router_lan().0.to_string());
    assert_eq!(session["bfdStatus"], "N/A");

    // The table and YAML say the same.
    let table = status(&lab, "table")?;
    eprintln!("ferrolb-controller status:\n{table}");
    for expected in [
        "CONFIGURATION",
        "controller",
        "default/l2web",
        "router-v4",
        "Established",
    ] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    let yaml: Value = serde_yaml::from_str(&status(&lab, "yaml")?)?;
    assert_eq!(yaml["services"], report["services"]);

    // A reference to a BFD profile that does not exist: every component says Invalid, with it.
    let broken = format!(
        "apiVersion: ferrolb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: broken}}\n\
         spec: {{myASN: {}, peerASN: {}, peerAddress: 192.0.2.99, bfdProfile: nope}}\n",
        plan::NODE_ASN,
        plan::ROUTER_ASN
    );
    lab.write_manifest("broken.yaml", &broken)?;
    let report: Value = wait_until("every component Invalid", LIMIT, || {
        Ok(report_now(&lab).and_then(|r| {
            let config = r["configuration"].as_array().cloned().unwrap_or_default();
            let invalid = config.iter().filter(|c| c["result"] == "Invalid").count();
            if invalid == 4 {
                Ok(r)
            } else {
                Err(format!("{config:?}"))
            }
        }))
    })?;
    for c in report["configuration"].as_array().unwrap() {
        let errors = c["errors"].to_string();
        assert!(
            errors.contains("BFDProfile \\\"nope\\\" does not exist"),
            "{c}"
        );
    }
    // The last good configuration stays in force: the sessions are still up.
    assert_eq!(report["bgpSessions"].as_array().unwrap().len(), 3);
    lab.down()?;
    Ok(())
}
