use super::*;
use ferrolb_fake_apiserver::FakeApiServer;
use ferrolb_shared::l2::election::Assignment;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

const RESOURCE: &str = "ferrolb.io/servicel2statuses";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn named(names: &[&str]) -> Interfaces {
    Interfaces::Named(names.iter().map(|n| n.to_string()).collect())
}

fn assignment(node: &str, services: &[&ServiceKey], interfaces: Interfaces) -> Assignment {
    Assignment {
        node: node.into(),
        pool: "pool".into(),
        services: services.iter().map(|s| (*s).clone()).collect(),
        interfaces,
        candidates: Vec::new(),
    }
}

#[test]
fn desired_has_one_object_per_service_with_its_addresses_and_interfaces() {
    let web = ServiceKey::new("front", "web");
    let dns = ServiceKey::new("infra", "dns");
    let dns_tcp = ServiceKey::new("infra", "dns-tcp");
    let mut election = Election::default();
    // web: dual-stack, both here, on eth0 and eth1.
    election.assignments.insert(
        ip("2001:db8::10"),
        assignment("node1", &[&web], named(&["eth1"])),
    );
    election.assignments.insert(
        ip("192.0.2.10"),
        assignment("node1", &[&web], named(&["eth0"])),
    );
    // dns and dns-tcp share one address, on every interface.
    election.assignments.insert(
        ip("192.0.2.53"),
        assignment("node1", &[&dns, &dns_tcp], Interfaces::All),
    );
    // Another node's address is not ours.
    let other = ServiceKey::new("front", "other");
    election.assignments.insert(
        ip("192.0.2.99"),
        assignment("node2", &[&other], Interfaces::All),
    );
    let owned = BTreeMap::from([
        (ip("192.0.2.10"), named(&["eth0"])),
        (ip("2001:db8::10"), named(&["eth1"])),
        (ip("192.0.2.53"), Interfaces::All),
    ]);
    let uid = |s: &ServiceKey| (s.name != "dns-tcp").then(|| format!("uid-{}", s.name));
    let d = desired("node1", &election, &owned, uid);
    let keys: Vec<(&str, &str)> = d.keys().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("front", "web.node1"),
            ("infra", "dns-tcp.node1"),
            ("infra", "dns.node1")
        ]
    );

    let w = &d[&("front".to_string(), "web.node1".to_string())];
    let v = serde_json::to_value(w).unwrap();
    assert_eq!(
        v,
        json!({
            "apiVersion": "ferrolb.io/v1beta1",
            "kind": "ServiceL2Status",
            "metadata": {
                "name": "web.node1",
                "namespace": "front",
                "labels": {
                    "ferrolb.io/node": "node1",
                    "ferrolb.io/service-name": "web",
                    "ferrolb.io/service-namespace": "front",
                },
                "ownerReferences": [
                    { "apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-web" }
                ],
            },
            "spec": {},
            "status": {
                "node": "node1",
                "serviceName": "web",
                "serviceNamespace": "front",
                "interfaces": ["eth0", "eth1"],
                "ips": ["192.0.2.10", "2001:db8::10"],
            },
        })
    );

    let dns = &d[&("infra".to_string(), "dns.node1".to_string())];
    let status = dns.status.as_ref().unwrap();
    assert!(status.interfaces.is_empty(), "every usable interface");
    assert_eq!(status.ips, ["192.0.2.53"]);
    // Without a uid there is no owner reference (it cannot be made without one).
    let tcp = &d[&("infra".to_string(), "dns-tcp.node1".to_string())];
    assert!(tcp.metadata.owner_references.is_none());
    assert!(desired("node1", &election, &BTreeMap::new(), uid).is_empty());
}

#[test]
fn a_listed_object_compares_equal_to_what_was_built() {
    let web = ServiceKey::new("front", "web");
    let built = build(
        "node1",
        &web,
        Some("u1".into()),
        &[ip("192.0.2.10")],
        &Interfaces::All,
    );
    let mut listed = built.clone();
    listed.metadata.uid = Some("x".into());
    listed.metadata.resource_version = Some("7".into());
    if let Some(l) = listed.metadata.labels.as_mut() {
        l.insert("team".into(), "blue".into());
    }
    let (key, ours) = owned_fields(&listed).unwrap();
    assert_eq!(key, ("front".to_string(), "web.node1".to_string()));
    assert_eq!(ours, built);
}

#[test]
fn the_standalone_report_lists_addresses_interfaces_and_services() {
    let dir = tempfile::tempdir().unwrap();
    let web = ServiceKey::new("front", "web");
    let mut election = Election::default();
    election.assignments.insert(
        ip("192.0.2.10"),
        assignment("node1", &[&web], named(&["eth0"])),
    );
    let owned = BTreeMap::from([(ip("192.0.2.10"), named(&["eth0"]))]);
    write_report(dir.path(), "node1", &election, &owned).unwrap();
    let text = std::fs::read_to_string(dir.path().join("announcements.yaml")).unwrap();
    assert!(text.contains("node: node1\n"), "{text}");
    assert!(
        text.contains("  - ip: 192.0.2.10\n    interfaces: eth0\n    services: [front/web]\n"),
        "{text}"
    );
    write_report(dir.path(), "node1", &election, &BTreeMap::new()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("announcements.yaml")).unwrap();
    assert!(text.contains("announcing: []\n"), "{text}");
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn to_json(o: &ServiceL2Status) -> Value {
    serde_json::to_value(o).unwrap()
}

#[tokio::test]
async fn the_writer_keeps_this_nodes_objects_in_line_on_the_fake_api_server() {
    let fake = FakeApiServer::start().await;
    for ns in ["front", "back"] {
        fake.create(
            "namespaces",
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        );
    }
    let web = ServiceKey::new("front", "web");
    let v4 = ip("192.0.2.10");
    // Left by an earlier run of this speaker, and written by another node's speaker.
    let stale = build(
        "node1",
        &ServiceKey::new("back", "old"),
        None,
        &[ip("192.0.2.20")],
        &Interfaces::All,
    );
    fake.create(RESOURCE, to_json(&stale));
    let theirs = build("node2", &web, None, &[v4], &Interfaces::All);
    fake.create(RESOURCE, to_json(&theirs));

    let timing = Timing {
        resync: Duration::from_millis(300),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
    };
    let writer = Writer::spawn(fake.client("speaker"), "node1".into(), timing);
    eventually("the stale object is deleted at start", || {
        fake.get(RESOURCE, "back", "old.node1").is_none()
    })
    .await;

    // Announced: created, with labels, owner and status.
    let mut election = Election::default();
    election
        .assignments
        .insert(v4, assignment("node1", &[&web], named(&["eth0"])));
    let mut owned = BTreeMap::from([(v4, named(&["eth0"]))]);
    let uid = |_: &ServiceKey| Some("uid-web".to_string());
    writer.set(desired("node1", &election, &owned, uid));
    let get = || fake.get(RESOURCE, "front", "web.node1");
    eventually("the object is created", || {
        get().is_some_and(|o| o["status"]["ips"] == json!(["192.0.2.10"]))
    })
    .await;
    let o = get().unwrap();
    assert_eq!(o["metadata"]["labels"]["ferrolb.io/node"], "node1");
    assert_eq!(o["metadata"]["labels"]["ferrolb.io/service-name"], "web");
    assert_eq!(
        o["metadata"]["labels"]["ferrolb.io/service-namespace"],
        "front"
    );
    assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "uid-web");
    assert_eq!(o["status"]["node"], "node1");
    assert_eq!(o["status"]["interfaces"], json!(["eth0"]));

    // Deleted behind its back: the resync puts it back.
    fake.delete(RESOURCE, "front", "web.node1");
    eventually("the resync recreates it", || get().is_some()).await;

    // A second address, with the first writes failing: retried until written.
    fake.inject_conflicts("servicel2statuses", 2);
    let v6 = ip("2001:db8::10");
    election
        .assignments
        .insert(v6, assignment("node1", &[&web], Interfaces::All));
    owned.insert(v6, Interfaces::All);
    writer.set(desired("node1", &election, &owned, uid));
    eventually("the update is retried through the failures", || {
        get().is_some_and(|o| o["status"]["ips"] == json!(["192.0.2.10", "2001:db8::10"]))
    })
    .await;
    assert_eq!(fake.conflicts_served(), 2);
    assert_eq!(get().unwrap()["status"]["interfaces"], json!([]));

    // No longer announced: deleted; the other node's object is left alone.
    writer.set(Desired::new());
    eventually("the object is deleted", || get().is_none()).await;
    assert!(fake.get(RESOURCE, "front", "web.node2").is_some());

    // Announced again, then the speaker stops: it cleans up.
    writer.set(desired("node1", &election, &owned, uid));
    eventually("the object is back", || get().is_some()).await;
    writer.stop(Duration::from_secs(5)).await;
    assert!(get().is_none(), "deleted on stop");
    assert!(fake.get(RESOURCE, "front", "web.node2").is_some());

    // Server-side applies (PATCH) and deletes, nothing else.
    let methods: BTreeSet<String> = fake
        .writes()
        .into_iter()
        .filter(|w| w.client == "speaker")
        .map(|w| w.method)
        .collect();
    assert_eq!(methods, BTreeSet::from(["DELETE".into(), "PATCH".into()]));
    let status_writes = fake
        .writes()
        .iter()
        .filter(|w| w.client == "speaker" && w.path.ends_with("/web.node1/status"))
        .count();
    assert!(status_writes >= 3, "{status_writes}");
    assert_requests_allowed_by_rbac(&fake);
}

/// (resource, verb) pairs `config/rbac/speaker.yaml` grants in the `ferrolb.io` group (its
/// flow-style `resources: [..]` / `verbs: [..]` lines).
fn speaker_rbac() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rbac/speaker.yaml");
    let text = std::fs::read_to_string(path).expect("the speaker's RBAC manifest");
    let list = |line: &str, key: &str| -> Option<Vec<String>> {
        let rest = line.trim().strip_prefix("- ").unwrap_or(line.trim());
        let items = rest
            .strip_prefix(key)?
            .trim()
            .strip_prefix('[')?
            .strip_suffix(']')?;
        Some(items.split(',').map(|i| i.trim().to_string()).collect())
    };
    let mut grants = BTreeSet::new();
    let (mut ferrolb, mut resources) = (false, Vec::new());
    for line in text.lines() {
        if let Some(groups) = list(line, "apiGroups:") {
            ferrolb = groups.iter().any(|g| g == "ferrolb.io");
        } else if let Some(r) = list(line, "resources:") {
            resources = r;
        } else if let Some(verbs) = list(line, "verbs:")
            && ferrolb
        {
            for r in &resources {
                for v in &verbs {
                    grants.insert((r.clone(), v.clone()));
                }
            }
        }
    }
    grants
}

/// Every request the writer made is granted to the speaker by the shipped RBAC.
fn assert_requests_allowed_by_rbac(fake: &FakeApiServer) {
    let grants = speaker_rbac();
    let requests = fake.writes().into_iter().chain(fake.reads());
    for r in requests.filter(|r| r.client == "speaker") {
        let (resource, verb) = match (r.method.as_str(), r.path.rsplit('/').next()) {
            ("GET", Some("servicel2statuses")) => ("servicel2statuses", "list"),
            ("PATCH", Some("status")) => ("servicel2statuses/status", "patch"),
            ("PATCH", _) => ("servicel2statuses", "patch"),
            ("DELETE", _) => ("servicel2statuses", "delete"),
            _ => panic!("unexpected request {r:?}"),
        };
        assert!(
            grants.contains(&(resource.to_string(), verb.to_string())),
            "{r:?} needs {verb} on {resource}, not granted by config/rbac/speaker.yaml"
        );
    }
    // Server-side apply creates what does not exist: that takes `create` as well.
    assert!(grants.contains(&("servicel2statuses".into(), "create".into())));
}
