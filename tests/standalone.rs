//! The controller binary in standalone mode, end to end: real process, real files.

use ferrolb_e2e::{ChildGuard, binary, wait_for, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

struct Setup {
    _tmp: tempfile::TempDir,
    manifests: PathBuf,
    status: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for f in ["pools.yaml", "services.yaml"] {
        std::fs::copy(workspace_root().join("examples").join(f), manifests.join(f)).unwrap();
    }
    let status = tmp.path().join("manifests.status");
    Setup {
        _tmp: tmp,
        manifests,
        status,
    }
}

fn start(s: &Setup) -> ChildGuard {
    let child = Command::new(binary("ferrolb-controller"))
        .arg("--manifests")
        .arg(&s.manifests)
        .args(["--metrics-addr", "127.0.0.1:0", "--log", "debug"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// The addresses written for a Service, once its status file exists.
fn ips(status: &Path, ns: &str, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(
        status
            .join("services")
            .join(ns)
            .join(format!("{name}.yaml")),
    )
    .ok()?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let ingress = v
        .get("status")?
        .get("loadBalancer")?
        .get("ingress")?
        .as_sequence()?;
    for i in ingress {
        assert_eq!(i.get("ipMode").and_then(|m| m.as_str()), Some("VIP"));
    }
    Some(
        ingress
            .iter()
            .filter_map(|i| i.get("ip")?.as_str().map(String::from))
            .collect(),
    )
}

fn wait_ips(s: &Setup, ns: &str, name: &str) -> Vec<String> {
    wait_for(&format!("status of {ns}/{name}"), LIMIT, || {
        ips(&s.status, ns, name)
    })
}

#[test]
fn assigns_example_services_and_survives_a_restart() {
    let s = setup();
    let mut expected = Vec::new();
    {
        let _c = start(&s);
        // Services are served in namespace/name order: dns first (198.51.100.0 is skipped by
        // avoidBuggyIPs), then dns-tcp shares its address (same key, other protocol), then web.
        assert_eq!(wait_ips(&s, "default", "dns"), ["198.51.100.1"]);
        assert_eq!(wait_ips(&s, "default", "dns-tcp"), ["198.51.100.1"]);
        assert_eq!(
            wait_ips(&s, "default", "web"),
            ["198.51.100.2", "2001:db8:51::"]
        );
        assert_eq!(wait_ips(&s, "default", "fixed"), ["198.51.100.42"]);
        assert!(wait_ips(&s, "default", "api")[0].starts_with("203.0.113."));
        assert_eq!(wait_ips(&s, "team-a", "portal"), ["198.51.100.200"]);
        for (ns, n) in [
            ("default", "web"),
            ("default", "dns"),
            ("default", "api"),
            ("team-a", "portal"),
        ] {
            expected.push(wait_ips(&s, ns, n));
        }
        let config = std::fs::read_to_string(s.status.join("config.yaml")).unwrap();
        assert!(config.contains("accepted: true"), "{config}");
        let pools = std::fs::read_to_string(s.status.join("pools.yaml")).unwrap();
        assert!(pools.contains("team-a"), "{pools}");
    }
    // A new Service written while the controller is down must not take a reclaimed address.
    let early = "apiVersion: v1\nkind: Service\nmetadata: {name: aaa-early, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 1}]}\n";
    std::fs::write(s.manifests.join("early.yaml"), early).unwrap();
    let _c = start(&s);
    let early_ips = wait_ips(&s, "default", "aaa-early");
    for (i, (ns, n)) in [
        ("default", "web"),
        ("default", "dns"),
        ("default", "api"),
        ("team-a", "portal"),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            wait_ips(&s, ns, n),
            expected[i],
            "{ns}/{n} moved across a restart"
        );
        assert!(
            !expected[i].contains(&early_ips[0]),
            "the new Service took {n}'s address"
        );
    }
}

#[test]
fn picks_up_edits_and_keeps_the_last_good_config() {
    let s = setup();
    let _c = start(&s);
    wait_ips(&s, "default", "web");
    // A new Service is answered.
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: late, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 9000}]}\n";
    std::fs::write(s.manifests.join("late.yaml"), svc).unwrap();
    wait_ips(&s, "default", "late");
    // A broken pool rejects the whole config; nothing already assigned changes and new
    // Services are still served from the last good pools.
    let bad = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: broken}\nspec: {addresses: [10.0.0.0/40]}\n";
    std::fs::write(s.manifests.join("broken.yaml"), bad).unwrap();
    let config = wait_for("config rejection", LIMIT, || {
        let c = std::fs::read_to_string(s.status.join("config.yaml")).ok()?;
        c.contains("accepted: false").then_some(c)
    });
    assert!(
        config.contains("broken.yaml (document 1): IPAddressPool \"broken\": spec.addresses[0]"),
        "{config}"
    );
    let svc2 = svc.replace("late", "later");
    std::fs::write(s.manifests.join("later.yaml"), svc2).unwrap();
    assert!(wait_ips(&s, "default", "later")[0].starts_with("198.51.100."));
    std::fs::remove_file(s.manifests.join("broken.yaml")).unwrap();
    wait_for("config acceptance", LIMIT, || {
        std::fs::read_to_string(s.status.join("config.yaml"))
            .ok()?
            .contains("accepted: true")
            .then_some(())
    });
    // Deleting a Service removes its status.
    std::fs::remove_file(s.manifests.join("late.yaml")).unwrap();
    wait_for("status removal", LIMIT, || {
        ips(&s.status, "default", "late").is_none().then_some(())
    });
    let events = std::fs::read_to_string(s.status.join("events.log")).unwrap();
    assert!(
        events.contains("IPAllocated Service default/later"),
        "{events}"
    );
    assert!(events.contains("ConfigRejected"), "{events}");
}

/// What the CRD schemas cannot refuse (it needs other objects) is in the ConfigurationState:
/// overlapping pools, a reference to a BFD profile and to a pool that do not exist.
#[test]
fn cross_object_mistakes_are_listed_in_the_configuration_state() {
    let s = setup();
    let _c = start(&s);
    wait_ips(&s, "default", "web");
    let state = |s: &Setup| {
        let text = std::fs::read_to_string(s.status.join("configurationstate.yaml")).ok()?;
        let v: serde_json::Value = serde_yaml::from_str(&text).ok()?;
        Some(v)
    };
    let valid = state(&s).expect("configurationstate.yaml");
    assert_eq!(valid["kind"], "ConfigurationState");
    assert_eq!(valid["metadata"]["name"], "controller");
    assert_eq!(valid["status"]["result"], "Valid", "{valid}");
    let bad = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: overlapping}\n\
               spec: {addresses: [198.51.100.10/32]}\n---\n\
               apiVersion: ferrolb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor-b}\n\
               spec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, bfdProfile: nope}\n---\n\
               apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\n\
               spec: {ipAddressPools: [missing]}\n";
    std::fs::write(s.manifests.join("cross.yaml"), bad).unwrap();
    let invalid = wait_for("an Invalid ConfigurationState", LIMIT, || {
        state(&s).filter(|v| v["status"]["result"] == "Invalid")
    });
    let errors: Vec<&str> = invalid["status"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for expected in [
        "overlaps",
        "BFDProfile \"nope\" does not exist",
        "IPAddressPool \"missing\" does not exist",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected}: {errors:#?}"
        );
    }
    assert_eq!(invalid["status"]["component"], "controller");
    assert!(
        invalid["status"]["summary"]
            .as_str()
            .unwrap()
            .contains("3 errors"),
        "{invalid}"
    );
    // Addresses already handed out stay: the last good configuration is in force.
    assert_eq!(wait_ips(&s, "default", "web")[0], "198.51.100.2");
}

fn lb_service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
    )
}

/// The lines of events.log about `object`, reasons only, oldest first.
fn event_reasons(s: &Setup, object: &str) -> Vec<String> {
    let events = std::fs::read_to_string(s.status.join("events.log")).unwrap_or_default();
    events
        .lines()
        .filter(|l| l.contains(&format!("Service {object}")))
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect()
}

/// config.yaml as last written (it carries the time it was written).
fn config_written(s: &Setup) -> String {
    std::fs::read_to_string(s.status.join("config.yaml")).unwrap()
}

/// Waits until a configuration newer than `before` was accepted.
fn wait_config_after(s: &Setup, before: &str) {
    wait_for("a newer accepted config", LIMIT, || {
        let now = std::fs::read_to_string(s.status.join("config.yaml")).ok()?;
        (now != before && now.contains("accepted: true")).then_some(())
    });
}

/// MetalLB's "delete recycles IP": a Service waiting for an address gets the one a deleted
/// Service leaves, without being edited itself; and turning autoAssign off renumbers nothing.
#[test]
fn a_waiting_service_gets_the_address_a_deleted_one_leaves() {
    let s = setup();
    for f in ["pools.yaml", "services.yaml"] {
        std::fs::remove_file(s.manifests.join(f)).unwrap();
    }
    let pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: tiny, namespace: metallb-system}\nspec: {addresses: [1.2.3.0/31]}\n";
    std::fs::write(s.manifests.join("pool.yaml"), pool).unwrap();
    for name in ["a", "b"] {
        std::fs::write(s.manifests.join(format!("{name}.yaml")), lb_service(name)).unwrap();
    }
    let _c = start(&s);
    assert_eq!(wait_ips(&s, "default", "a"), ["1.2.3.0"]);
    assert_eq!(wait_ips(&s, "default", "b"), ["1.2.3.1"]);
    std::fs::write(s.manifests.join("c.yaml"), lb_service("c")).unwrap();
    wait_for("c's AllocationFailed", LIMIT, || {
        event_reasons(&s, "default/c")
            .contains(&"AllocationFailed".to_string())
            .then_some(())
    });
    assert_eq!(ips(&s.status, "default", "c"), None);

    // autoAssign off: a and b keep their addresses (nothing is rewritten) and c still waits.
    let before = config_written(&s);
    let manual = pool.replace(
        "addresses: [1.2.3.0/31]",
        "addresses: [1.2.3.0/31], autoAssign: false",
    );
    std::fs::write(s.manifests.join("pool.yaml"), manual).unwrap();
    wait_config_after(&s, &before);
    assert_eq!(ips(&s.status, "default", "a").unwrap(), ["1.2.3.0"]);
    assert_eq!(ips(&s.status, "default", "b").unwrap(), ["1.2.3.1"]);
    assert_eq!(event_reasons(&s, "default/a"), ["IPAllocated"]);
    let before = config_written(&s);
    std::fs::write(s.manifests.join("pool.yaml"), pool).unwrap();
    wait_config_after(&s, &before);

    std::fs::remove_file(s.manifests.join("a.yaml")).unwrap();
    assert_eq!(wait_ips(&s, "default", "c"), ["1.2.3.0"]);
    // One failure per distinct reason (pool full; then only a pool with autoAssign off; then
    // full again), and the allocation last.
    let reasons = event_reasons(&s, "default/c");
    assert_eq!(
        reasons,
        [
            "AllocationFailed",
            "AllocationFailed",
            "AllocationFailed",
            "IPAllocated"
        ]
    );
    let events = std::fs::read_to_string(s.status.join("events.log")).unwrap();
    assert!(
        events.contains("\"tiny\" has autoAssign: false"),
        "{events}"
    );
}
