//! The controller's Kubernetes mode against a stateful fake API server over real HTTP: the
//! kube-rs client cannot tell it from a cluster. Each test has a 30 s limit.

mod kubernetes_support;

use ferrolb_fake_apiserver::FakeApiServer;
use ferrolb_shared::lease::LeaseTiming;
use kubernetes_support::*;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocates_and_writes_status_annotation_events_and_pool_status() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        let web = server.create("services", service("default", "web"));
        let c = start_controller(&server, "a", quick_lease());

        wait_for_ip(&server, "web", "10.0.0.0", "main").await;
        let svc = server.get("services", "default", "web").unwrap();
        assert_eq!(
            svc.pointer("/status/loadBalancer/ingress").unwrap(),
            &json!([{ "ip": "10.0.0.0", "ipMode": "VIP" }])
        );
        let allocated = eventually("an IPAllocated Event", || {
            events(&server, "IPAllocated").into_iter().next()
        })
        .await;
        assert_eq!(allocated["type"], "Normal");
        assert_eq!(allocated["metadata"]["namespace"], "default");
        assert_eq!(allocated["involvedObject"]["kind"], "Service");
        assert_eq!(allocated["involvedObject"]["name"], "web");
        assert_eq!(allocated["involvedObject"]["uid"], web["metadata"]["uid"]);
        assert!(allocated["message"].as_str().unwrap().contains("10.0.0.0"));
        let loaded = eventually("a ConfigLoaded Event", || {
            events(&server, "ConfigLoaded").into_iter().next()
        })
        .await;
        assert_eq!(loaded["metadata"]["namespace"], NS);
        assert_eq!(loaded["involvedObject"]["kind"], "Lease");

        // A Service created while the controller watches.
        server.create("services", service("default", "api"));
        wait_for_ip(&server, "api", "10.0.0.1", "main").await;

        eventually("pool status with 2 of 8 assigned", || {
            let status = server
                .get("ferrolb.io/ipaddresspools", NS, "main")?
                .get("status")?
                .clone();
            (status
                == json!({ "assignedIPv4": 2, "assignedIPv6": 0, "availableIPv4": 6, "availableIPv6": 0 }))
            .then_some(())
        })
        .await;
        assert!(c.metrics.ready.load(Ordering::Relaxed), "ready once synced");
        assert_writes_allowed_by_rbac(&server);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_addresses_and_new_services_do_not_take_them() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        // `aaa` sorts first and has no address: a naive pass would hand it 10.0.0.0.
        server.create("services", service("default", "aaa"));
        let held = with_status(service("default", "held"), "10.0.0.0", Some("main"));
        server.create("services", held);
        // Given its address by an older controller (or MetalLB): no annotation yet.
        let legacy = with_status(service("default", "legacy"), "10.0.0.1", None);
        server.create("services", legacy);

        let first = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "aaa", "10.0.0.2", "main").await;
        wait_for_ip(&server, "legacy", "10.0.0.1", "main").await;
        assert_eq!(ips(&server, "held"), ["10.0.0.0"]);

        // A fresh controller (same identity, as a restarted replica would renew its Lease).
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = server.writes().len();
        let _second = start_controller(&server, "a", quick_lease());
        server.create("services", service("default", "zzz"));
        wait_for_ip(&server, "zzz", "10.0.0.3", "main").await;
        for (name, ip) in [
            ("held", "10.0.0.0"),
            ("legacy", "10.0.0.1"),
            ("aaa", "10.0.0.2"),
        ] {
            assert_eq!(ips(&server, name), [ip], "{name} kept its address");
        }
        // The second controller rewrote nothing of what was already right.
        let rewritten: Vec<_> = server.writes()[before..]
            .iter()
            .filter(|w| w.path.contains("/services/") && !w.path.contains("/zzz"))
            .map(|w| w.path.clone())
            .collect();
        assert!(rewritten.is_empty(), "unexpected writes: {rewritten:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_watch_relists_and_sees_what_changed_meanwhile() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "a"));
        server.create("services", service("default", "b"));
        let _c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "a", "10.0.0.0", "main").await;
        wait_for_ip(&server, "b", "10.0.0.1", "main").await;

        // While no watch can see it, b is deleted and c created; then the history is gone.
        server.expire_history(|store| {
            store.remove("services", "default", "b");
            store.put("services", service("default", "c"));
        });
        // Only the relist can tell that b is gone; its address goes to c.
        wait_for_ip(&server, "c", "10.0.0.1", "main").await;
        assert!(
            server.gone_served() >= 1,
            "the watch must have been answered 410"
        );
        assert_eq!(ips(&server, "a"), ["10.0.0.0"]);

        // And the watches work again after the relist.
        server.create("services", service("default", "d"));
        wait_for_ip(&server, "d", "10.0.0.2", "main").await;
        assert_eq!(
            events(&server, "ClearAssignment"),
            Vec::<serde_json::Value>::new()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_api_server_going_away_mid_watch() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "a"));
        let c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "a", "10.0.0.0", "main").await;

        server.go_away().await;
        // Changed while the server is unreachable: seen through the resumed watch.
        server.create("services", service("default", "during"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.come_back().await;

        server.create("services", service("default", "after"));
        wait_for_ip(&server, "during", "10.0.0.1", "main").await;
        wait_for_ip(&server, "after", "10.0.0.2", "main").await;
        assert!(!c.task.is_finished(), "the controller must survive");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_status_writes_are_retried_until_they_land() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.inject_conflicts("/services/web/status", 3);
        server.create("services", service("default", "web"));
        let _c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "web", "10.0.0.0", "main").await;
        assert_eq!(server.conflicts_served(), 3);
        let statuses: Vec<u16> = server
            .writes()
            .iter()
            .filter(|w| w.path.ends_with("/services/web/status"))
            .map(|w| w.status)
            .collect();
        assert_eq!(statuses[..4], [409, 409, 409, 200]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_keeps_the_last_good_one() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "a"));
        let c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "a", "10.0.0.0", "main").await;

        server.create(
            "ferrolb.io/ipaddresspools",
            pool("broken", &["10.1.0.300/24"]),
        );
        eventually("ferrolb_config_stale 1", || {
            c.metrics
                .render()
                .contains("ferrolb_config_stale 1")
                .then_some(())
        })
        .await;
        let rejected = eventually("a ConfigRejected Event", || {
            events(&server, "ConfigRejected").into_iter().next()
        })
        .await;
        assert_eq!(rejected["type"], "Warning");
        assert_eq!(rejected["metadata"]["namespace"], NS);
        let message = rejected["message"].as_str().unwrap();
        assert!(message.contains("broken"), "{message}");
        // The controller's ConfigurationState says Invalid, with the error in full.
        let state = eventually("the controller's ConfigurationState to say Invalid", || {
            let s = server.get("ferrolb.io/configurationstates", NS, "controller")?;
            (s["status"]["result"] == "Invalid").then_some(s)
        })
        .await;
        assert_eq!(state["status"]["component"], "controller");
        let errors = state["status"]["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().unwrap().contains("10.1.0.300/24")),
            "{state}"
        );

        // Allocation goes on from the pools in force.
        server.create("services", service("default", "b"));
        wait_for_ip(&server, "b", "10.0.0.1", "main").await;
        assert_eq!(ips(&server, "a"), ["10.0.0.0"]);

        server.delete("ferrolb.io/ipaddresspools", NS, "broken");
        eventually("ferrolb_config_stale 0", || {
            c.metrics
                .render()
                .contains("ferrolb_config_stale 0")
                .then_some(())
        })
        .await;
        eventually("the ConfigurationState to say Valid again", || {
            let s = server.get("ferrolb.io/configurationstates", NS, "controller")?;
            (s["status"]["result"] == "Valid" && s["status"]["errors"] == serde_json::json!([]))
                .then_some(())
        })
        .await;
        assert_writes_allowed_by_rbac(&server);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_writes_and_a_standby_takes_over_after_expiry() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "one"));
        let short = LeaseTiming {
            duration: Duration::from_secs(2),
            renew_deadline: Duration::from_millis(1300),
            retry_period: Duration::from_millis(200),
        };
        let mut a = Some(start_controller(&server, "a", short));
        let mut b = Some(start_controller(&server, "b", short));
        wait_for_ip(&server, "one", "10.0.0.0", "main").await;
        let leader = lease_holder(&server).expect("a lease holder");
        let standby = if leader == "a" { "b" } else { "a" };
        // Let the standby run for a while: it must not write anything but its Lease attempts.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let not_lease = |client: &str| {
            server
                .writes()
                .into_iter()
                .filter(|w| w.client == client && !w.path.contains("/leases"))
                .count()
        };
        assert_eq!(not_lease(standby), 0, "the standby wrote");
        let standby_metrics = if leader == "a" { &b } else { &a };
        let standby_metrics = &standby_metrics.as_ref().unwrap().metrics;
        assert!(
            standby_metrics.ready.load(Ordering::Relaxed),
            "a standby reports ready, or rollouts would stall on it"
        );
        assert!(
            standby_metrics.render().contains("ferrolb_config_loaded 0"),
            "the standby must not have reconciled anything"
        );
        assert!(not_lease(&leader) > 0);

        // Kill the leader; the standby takes over once the Lease expires.
        let mut killed = if leader == "a" { a.take() } else { b.take() }.unwrap();
        killed.task.abort();
        let _ = (&mut killed.task).await;
        let leader_writes = server
            .writes()
            .iter()
            .filter(|w| w.client == leader)
            .count();
        server.create("services", service("default", "two"));
        wait_for_ip(&server, "two", "10.0.0.1", "main").await;
        assert_eq!(lease_holder(&server).as_deref(), Some(standby));
        let lease = server
            .get("coordination.k8s.io/leases", NS, "ferrolb-controller")
            .unwrap();
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
        assert_eq!(ips(&server, "one"), ["10.0.0.0"]);
        let after = server
            .writes()
            .iter()
            .filter(|w| w.client == leader)
            .count();
        assert_eq!(after, leader_writes, "the killed leader kept writing");
        drop((a, b));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_stops_at_once() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "one"));
        let mut c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "one", "10.0.0.0", "main").await;

        server.update(
            "coordination.k8s.io/leases",
            NS,
            "ferrolb-controller",
            |l| {
                l["spec"]["holderIdentity"] = json!("intruder");
            },
        );
        let result = tokio::time::timeout(Duration::from_secs(5), &mut c.task)
            .await
            .expect("the controller must stop once deposed")
            .expect("task");
        let err = result.expect_err("losing the lease is an error");
        assert!(err.to_string().contains("lost the leader lease"), "{err}");
        assert!(!c.metrics.ready.load(Ordering::Relaxed));

        server.create("services", service("default", "two"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(ips(&server, "two").is_empty(), "a deposed leader wrote");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_classes_are_untouched_and_clusterip_is_cleared() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        let mut other = service("default", "other");
        other["spec"]["loadBalancerClass"] = json!("example.com/other");
        server.create("services", other);
        server.create("services", service("default", "mine"));
        let _c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "mine", "10.0.0.0", "main").await;
        // The reconciler has handled the whole listing by now.
        let other = server.get("services", "default", "other").unwrap();
        assert!(other.get("status").is_none(), "{other}");
        assert!(pool_annotation(&server, "other").is_none());
        assert!(
            server.writes().iter().all(|w| !w.path.contains("/other")),
            "a Service of another class was written"
        );

        server.update("services", "default", "mine", |s| {
            s["spec"]["type"] = json!("ClusterIP");
        });
        eventually("mine's status and annotation cleared", || {
            (ips(&server, "mine").is_empty() && pool_annotation(&server, "mine").is_none())
                .then_some(())
        })
        .await;
        eventually("a ClearAssignment Event", || {
            events(&server, "ClearAssignment").into_iter().next()
        })
        .await;
    })
    .await;
}

/// The real binary, pointed at the fake server by a kubeconfig: `run` infers its client,
/// leads, allocates, and on SIGTERM exits cleanly and releases the Lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_leads_allocates_and_releases_its_lease_on_sigterm() {
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "web"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path());
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
        for var in ferrolb_fake_apiserver::PROXY_VARIABLES {
            command.env_remove(var);
        }
        let child = command
            .args(["--metrics-addr", "127.0.0.1:0", "--namespace", NS])
            .env("KUBECONFIG", &kubeconfig)
            .env("FERROLB_POD_NAME", "binary")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("FERROLB_MANIFESTS")
            .env("FERROLB_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the controller binary");
        wait_for_ip(&server, "web", "10.0.0.0", "main").await;
        assert_eq!(lease_holder(&server).as_deref(), Some("binary"));

        let pid = child.id().expect("running").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let output = child.wait_with_output().await.expect("wait");
        assert!(output.status.success(), "exit status {:?}", output.status);
        eventually("the lease to be released", || {
            lease_holder(&server).is_none().then_some(())
        })
        .await;
    })
    .await;
}

/// MetalLB's "delete recycles IP", in Kubernetes mode: a Service waiting for an address gets
/// the one a deleted Service leaves, without being touched itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_service_gets_the_address_a_deleted_one_leaves() {
    within(async {
        let server = FakeApiServer::start().await;
        server.create("namespaces", namespace("default"));
        server.create("namespaces", namespace(NS));
        server.create("ferrolb.io/ipaddresspools", pool("main", &["10.0.0.0/31"]));
        server.create("services", service("default", "a"));
        server.create("services", service("default", "b"));
        let c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "a", "10.0.0.0", "main").await;
        wait_for_ip(&server, "b", "10.0.0.1", "main").await;
        assert_eq!(c.metrics.services_waiting.get(), 0);
        server.create("services", service("default", "c"));
        let failed = eventually("c's AllocationFailed Event", || {
            events(&server, "AllocationFailed")
                .into_iter()
                .find(|e| e["involvedObject"]["name"] == "c")
        })
        .await;
        assert_eq!(
            failed["message"],
            "failed to allocate: address pool \"main\" has no free IPv4 address left"
        );
        assert!(ips(&server, "c").is_empty());
        // What the FerroLBServiceWithoutAddress alert watches.
        eventually("one Service waiting", || {
            (c.metrics.services_waiting.get() == 1).then_some(())
        })
        .await;

        server.delete("services", "default", "a");
        wait_for_ip(&server, "c", "10.0.0.0", "main").await;
        eventually("no Service waiting", || {
            (c.metrics.services_waiting.get() == 0).then_some(())
        })
        .await;
        eventually("c's IPAllocated Event", || {
            events(&server, "IPAllocated")
                .into_iter()
                .find(|e| e["involvedObject"]["name"] == "c")
        })
        .await;
    })
    .await;
}

/// The speakers' gossip key: the leader creates the Secret when it is missing (random,
/// 32 bytes, in its namespace, with a write RBAC allows), and never replaces it: neither a
/// later leader nor an operator's own key is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_creates_the_gossip_secret_once_and_never_replaces_it() {
    use ferrolb_controller::kubernetes::memberlist::{KEY_BYTES, Outcome, ensure};
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        let c = start_controller(&server, "a", quick_lease());
        let secret = eventually("the gossip Secret", || {
            server.get("secrets", NS, "ferrolb-memberlist")
        })
        .await;
        let key = secret["data"]["secretkey"]
            .as_str()
            .expect("a key")
            .to_string();
        let bytes = base64_len(&key);
        assert_eq!(bytes, KEY_BYTES, "{secret}");
        assert_writes_allowed_by_rbac(&server);
        drop(c);

        // A second leader (and a second call) finds it and leaves it alone.
        let client = server.client("second");
        assert_eq!(ensure(client.clone(), NS).await.unwrap(), Outcome::Exists);
        let again = server.get("secrets", NS, "ferrolb-memberlist").unwrap();
        assert_eq!(again["data"]["secretkey"].as_str(), Some(key.as_str()));

        // An operator's own key in another install's namespace stays as it is.
        server.create("namespaces", namespace("other"));
        server.create(
            "secrets",
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "ferrolb-memberlist", "namespace": "other"},
                   "data": {"secretkey": "b3BlcmF0b3I="}}),
        );
        assert_eq!(
            ensure(client.clone(), "other").await.unwrap(),
            Outcome::Exists
        );
        let theirs = server
            .get("secrets", "other", "ferrolb-memberlist")
            .unwrap();
        assert_eq!(theirs["data"]["secretkey"], "b3BlcmF0b3I=");
        // Two keys made apart differ.
        server.create("namespaces", namespace("third"));
        assert_eq!(ensure(client, "third").await.unwrap(), Outcome::Created);
        let third = server
            .get("secrets", "third", "ferrolb-memberlist")
            .unwrap();
        assert_ne!(third["data"]["secretkey"].as_str(), Some(key.as_str()));
    })
    .await;
}

/// The decoded length of a padded base64 string.
fn base64_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|b| *b == b'=').count();
    s.len() / 4 * 3 - pad
}

/// `ferrolb-controller status` against the API server: the controller's writes (address,
/// pool counters, ConfigurationState) and what speakers write (their ConfigurationState,
/// ServiceL2Status, ServiceBGPStatus, BGPSessionState; created here as a speaker would),
/// joined per Service, in all three outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_report_reads_everything_from_the_api_server() {
    use ferrolb_controller::status::{Output, assemble, from_kube, render};
    within(async {
        let server = FakeApiServer::start().await;
        base_cluster(&server);
        server.create("services", service("default", "web"));
        let _c = start_controller(&server, "a", quick_lease());
        wait_for_ip(&server, "web", "10.0.0.0", "main").await;
        eventually("the pool's counters and the controller's ConfigurationState", || {
            let pool = server.get("ferrolb.io/ipaddresspools", NS, "main")?;
            let state = server.get("ferrolb.io/configurationstates", NS, "controller")?;
            (pool["status"]["assignedIPv4"] == 1 && state["status"]["result"] == "Valid")
                .then_some(())
        })
        .await;
        let status_of = |kind: &str, name: &str, ns: &str, status: serde_json::Value| {
            json!({
                "apiVersion": "ferrolb.io/v1beta1", "kind": kind,
                "metadata": { "name": name, "namespace": ns }, "spec": {}, "status": status,
            })
        };
        server.create(
            "ferrolb.io/servicel2statuses",
            status_of("ServiceL2Status", "web.node1", "default", json!({
                "node": "node1", "serviceName": "web", "serviceNamespace": "default",
                "interfaces": [], "ips": ["10.0.0.0"],
            })),
        );
        server.create(
            "ferrolb.io/servicebgpstatuses",
            status_of("ServiceBGPStatus", "web.node2", "default", json!({
                "node": "node2", "serviceName": "web", "serviceNamespace": "default",
                "peers": ["tor"], "ips": ["10.0.0.0"],
            })),
        );
        server.create(
            "ferrolb.io/bgpsessionstates",
            status_of("BGPSessionState", "tor.node2", NS, json!({
                "node": "node2", "peer": "tor", "peerAddress": "192.0.2.1",
                "bgpStatus": "Established", "establishedSince": "2026-01-01T00:00:00Z",
                "bfdStatus": "N/A", "lastError": "",
            })),
        );
        server.create(
            "ferrolb.io/configurationstates",
            status_of("ConfigurationState", "speaker.node1", NS, json!({
                "component": "speaker", "node": "node1", "result": "Invalid",
                "summary": "rejected", "errors": ["api: BGPPeer \"tor\": spec.bfdProfile: BFDProfile \"x\" does not exist"],
            })),
        );
        let (inputs, warnings) = from_kube::read(&server.client("status"), NS).await.unwrap();
        assert_eq!(warnings, Vec::<String>::new());
        let report = assemble(inputs, jiff::Timestamp::now());
        let json: serde_json::Value =
            serde_json::from_str(&render(&report, Output::Json)).unwrap();
        assert_eq!(json["configuration"][0]["component"], "controller");
        assert_eq!(json["configuration"][0]["result"], "Valid");
        assert_eq!(json["configuration"][1]["result"], "Invalid");
        assert_eq!(json["pools"][0]["name"], "main");
        assert_eq!(json["pools"][0]["capacityIPv4"], 8);
        assert_eq!(json["pools"][0]["inUseIPv4"], 1);
        let web = &json["services"][0];
        assert_eq!(web["addresses"], json!(["10.0.0.0"]));
        assert_eq!(web["pool"], "main");
        assert_eq!(web["layer2Nodes"][0]["node"], "node1");
        assert_eq!(web["bgp"][0], json!({ "node": "node2", "peers": ["tor"] }));
        assert_eq!(json["bgpSessions"][0]["bgpStatus"], "Established");
        assert!(json["bgpSessions"][0]["uptimeSeconds"].as_u64().unwrap() > 0);
        let table = render(&report, Output::Table);
        assert!(table.contains("spec.bfdProfile"), "{table}");
        assert!(table.contains("default/web  10.0.0.0   main  node1"), "{table}");
    })
    .await;
}
