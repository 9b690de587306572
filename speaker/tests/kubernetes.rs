//! The speaker's Kubernetes mode against the stateful fake API server over real HTTP (the
//! same fake as the controller's tests): the snapshots it publishes, what it reads, and that
//! it survives relists and a vanishing server. Each test has a 30 s limit.

mod support;

use ferrolb_cluster::backoff::WatchBackoff;
use ferrolb_fake_apiserver::FakeApiServer;
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::cluster::ObjectKey;
use ferrolb_shared::service::status_ips;
use ferrolb_shared::snapshot::Snapshot;
use ferrolb_shared::stop::StopKind;
use ferrolb_speaker::dataplane::Mode;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::source::Source;
use ferrolb_speaker::{Options, Speaker, start};
use serde_json::{Value, json};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{SpeakerProcess, http_get, metric};

const NS: &str = "ferrolb-system";
const LIMIT: Duration = Duration::from_secs(30);

async fn within<F: Future<Output = ()>>(body: F) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
    tokio::time::timeout(LIMIT, body)
        .await
        .expect("test exceeded its 30 s limit");
}

fn service(name: &str, ip: Option<&str>) -> Value {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "type": "LoadBalancer", "clusterIP": "10.96.0.10",
            "selector": { "app": name },
            "ports": [{ "port": 80, "targetPort": 8080, "protocol": "TCP" }],
        },
    });
    if let Some(ip) = ip {
        svc["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": ip, "ipMode": "VIP" }] } });
    }
    svc
}

fn slice(name: &str, service: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({ "addresses": [ip], "conditions": { "ready": true }, "nodeName": "n1" }))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": name, "namespace": "default",
            "labels": { "kubernetes.io/service-name": service },
        },
        "addressType": "IPv4",
        "ports": [{ "port": 8080, "protocol": "TCP" }],
        "endpoints": endpoints,
    })
}

fn node(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node", "metadata": { "name": name },
        "status": { "addresses": [{ "type": "InternalIP", "address": ip }] },
    })
}

fn secret(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name, "namespace": ns },
        "data": { "password": "aHVudGVyMg==" },
    })
}

fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": { "name": name, "namespace": NS },
        "spec": { "addresses": addresses },
    })
}

/// Namespaces, pool `main`, Service `web` with its address and a slice of two endpoints,
/// nodes n1 and n2, a Secret in the speaker's namespace and one elsewhere.
fn cluster(server: &FakeApiServer) {
    for ns in ["default", NS] {
        server.create(
            "namespaces",
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
        );
    }
    server.create("ferrolb.io/ipaddresspools", pool("main", &["192.0.2.0/29"]));
    server.create("services", service("web", Some("192.0.2.1")));
    server.create(
        "discovery.k8s.io/endpointslices",
        slice("web-1", "web", &["10.1.0.1", "10.1.0.2"]),
    );
    server.create("nodes", node("n1", "172.16.0.1"));
    server.create("nodes", node("n2", "172.16.0.2"));
    server.create("secrets", secret(NS, "bgp"));
    server.create("secrets", secret("default", "not-mine"));
}

fn start_speaker(server: &FakeApiServer) -> Speaker {
    let source = Source::Kubernetes {
        client: server.client("speaker"),
        namespace: NS.into(),
        backoff: WatchBackoff::new(Duration::from_millis(50), Duration::from_millis(500)),
    };
    start(source, Options::new("n1", Mode::None), Metrics::new())
}

/// Poll `f` until it returns something (the test's own time limit catches a hang).
async fn eventually_some<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        tracing::debug!("waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait for a snapshot that satisfies `f`.
async fn snapshot_where(
    speaker: &mut Speaker,
    what: &str,
    f: impl FnMut(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    match tokio::time::timeout(LIMIT, speaker.snapshots.wait_for(f)).await {
        Ok(Some(s)) => s,
        Ok(None) => panic!("the speaker stopped before {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

fn web_ips(s: &Snapshot) -> Vec<IpAddr> {
    s.services
        .get(&ServiceKey::new("default", "web"))
        .map(|svc| status_ips(svc).to_vec())
        .unwrap_or_default()
}

fn endpoints(s: &Snapshot, name: &str) -> usize {
    s.endpoint_slices
        .get(&ObjectKey::new("default", name))
        .map(|e| e.endpoints.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_snapshot_is_the_whole_initial_listing() {
    within(async {
        let server = FakeApiServer::start().await;
        cluster(&server);
        let mut speaker = start_speaker(&server);
        let first = snapshot_where(&mut speaker, "the first snapshot", |_| true).await;
        // Nothing is published before every watcher has listed: the very first snapshot
        // already holds everything.
        assert_eq!(first.generation, 1);
        assert_eq!(first.node, "n1");
        assert_eq!(web_ips(&first), ["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(endpoints(&first, "web-1"), 2);
        assert_eq!(first.nodes.keys().collect::<Vec<_>>(), ["n1", "n2"]);
        assert_eq!(
            first.secrets.keys().collect::<Vec<_>>(),
            [&ObjectKey::new(NS, "bgp")],
            "only the speaker's namespace"
        );
        let config = first.config.as_ref().expect("the pool is accepted");
        assert!(config.pools.contains_key("main"));
        assert!(!first.config_stale);
        assert_eq!(
            first.node_view().addresses,
            ["172.16.0.1".parse::<IpAddr>().unwrap()]
        );
        let metrics = speaker.metrics.render();
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_snapshot_services"),
            Some(1.0)
        );
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_snapshot_nodes"),
            Some(2.0)
        );
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_dataplane{mode=\"none\"}"),
            Some(1.0)
        );

        // The speaker writes only its own status (here its ConfigurationState: nothing is
        // announced), and reads Secrets only where its RBAC lets it.
        for w in server.writes() {
            assert!(
                w.path
                    .contains(&format!("/namespaces/{NS}/configurationstates/speaker.n1")),
                "{w:?}"
            );
        }
        let secret_reads: Vec<_> = server
            .reads()
            .into_iter()
            .filter(|r| r.path.ends_with("/secrets"))
            .collect();
        assert!(!secret_reads.is_empty());
        for r in secret_reads {
            assert_eq!(r.path, format!("/api/v1/namespaces/{NS}/secrets"), "{r:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slice_status_and_node_changes_show_up() {
    within(async {
        let server = FakeApiServer::start().await;
        cluster(&server);
        let mut speaker = start_speaker(&server);
        snapshot_where(&mut speaker, "the first snapshot", |_| true).await;

        server.update("discovery.k8s.io/endpointslices", "default", "web-1", |s| {
            s["endpoints"] =
                slice("x", "web", &["10.1.0.1", "10.1.0.2", "10.1.0.3"])["endpoints"].clone();
        });
        snapshot_where(&mut speaker, "a third endpoint", |s| {
            endpoints(s, "web-1") == 3
        })
        .await;

        // The controller moved web to another address (a status write).
        server.update("services", "default", "web", |s| {
            s["status"]["loadBalancer"]["ingress"][0]["ip"] = json!("192.0.2.5");
        });
        let s = snapshot_where(&mut speaker, "web's new address", |s| {
            web_ips(s) == ["192.0.2.5".parse::<IpAddr>().unwrap()]
        })
        .await;
        assert_eq!(
            endpoints(&s, "web-1"),
            3,
            "a snapshot is complete, not a delta"
        );

        server.create("nodes", node("n3", "172.16.0.3"));
        server.delete("nodes", "", "n2");
        let s = snapshot_where(&mut speaker, "nodes n1 and n3", |s| {
            s.nodes.keys().map(String::as_str).collect::<Vec<_>>() == ["n1", "n3"]
        })
        .await;
        assert!(s.generation > 1);
        server.delete("discovery.k8s.io/endpointslices", "default", "web-1");
        snapshot_where(&mut speaker, "the slice gone", |s| {
            s.endpoint_slices.is_empty()
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_keeps_the_last_good_one_and_sets_stale() {
    within(async {
        let server = FakeApiServer::start().await;
        cluster(&server);
        let mut speaker = start_speaker(&server);
        snapshot_where(&mut speaker, "the first snapshot", |_| true).await;

        server.create(
            "ferrolb.io/ipaddresspools",
            pool("broken", &["10.1.0.300/24"]),
        );
        let s = snapshot_where(&mut speaker, "a stale config", |s| s.config_stale).await;
        let config = s.config.as_ref().expect("the last good config is kept");
        assert!(config.pools.contains_key("main") && !config.pools.contains_key("broken"));
        assert!(
            s.config_errors
                .iter()
                .any(|e| e.to_string().contains("10.1.0.300/24")),
            "{:?}",
            s.config_errors
        );
        let metrics = speaker.metrics.render();
        assert_eq!(metric(&metrics, "ferrolb_speaker_config_stale"), Some(1.0));
        assert_eq!(metric(&metrics, "ferrolb_speaker_config_loaded"), Some(1.0));
        // The speaker's ConfigurationState, in its namespace, labelled with its node.
        let state = |result: &'static str| {
            let server = &server;
            move || {
                let s = server.get("ferrolb.io/configurationstates", NS, "speaker.n1")?;
                (s["status"]["result"] == result).then_some(s)
            }
        };
        let invalid = eventually_some("an Invalid ConfigurationState", state("Invalid")).await;
        assert_eq!(invalid["metadata"]["labels"]["ferrolb.io/node"], "n1");
        assert!(
            invalid["status"]["errors"][0]
                .as_str()
                .unwrap()
                .contains("10.1.0.300/24")
        );

        server.delete("ferrolb.io/ipaddresspools", NS, "broken");
        let s = snapshot_where(&mut speaker, "the config accepted again", |s| {
            !s.config_stale
        })
        .await;
        assert!(s.config_errors.is_empty());
        assert_eq!(
            metric(&speaker.metrics.render(), "ferrolb_speaker_config_stale"),
            Some(0.0)
        );
        eventually_some("a Valid ConfigurationState", state("Valid")).await;
        // A stopped speaker takes its ConfigurationState with it.
        speaker.shutdown(StopKind::Clean).await.unwrap();
        eventually_some("the ConfigurationState deleted", || {
            server
                .get("ferrolb.io/configurationstates", NS, "speaker.n1")
                .is_none()
                .then_some(())
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_relist_sees_what_changed_meanwhile() {
    within(async {
        let server = FakeApiServer::start().await;
        cluster(&server);
        let mut speaker = start_speaker(&server);
        snapshot_where(&mut speaker, "the first snapshot", |_| true).await;

        // Changed while no watch can see it; then the history is gone.
        server.expire_history(|store| {
            store.remove("discovery.k8s.io/endpointslices", "default", "web-1");
            store.put("services", service("api", Some("192.0.2.2")));
            store.remove("nodes", "", "n2");
        });
        let s = snapshot_where(&mut speaker, "the relisted state", |s| {
            s.endpoint_slices.is_empty() && s.services.len() == 2 && s.nodes.len() == 1
        })
        .await;
        assert!(
            server.gone_served() >= 1,
            "the watch must have been answered 410"
        );
        assert_eq!(web_ips(&s), ["192.0.2.1".parse::<IpAddr>().unwrap()]);

        // And the watches work again after the relist.
        server.create(
            "discovery.k8s.io/endpointslices",
            slice("api-1", "api", &["10.1.0.9"]),
        );
        snapshot_where(&mut speaker, "api's slice", |s| endpoints(s, "api-1") == 1).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_api_server_going_away() {
    within(async {
        let server = FakeApiServer::start().await;
        cluster(&server);
        let mut speaker = start_speaker(&server);
        snapshot_where(&mut speaker, "the first snapshot", |_| true).await;

        server.go_away().await;
        // Changed while the server is unreachable: seen through the resumed watches.
        server.create("services", service("during", None));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            speaker.snapshots.latest().is_some(),
            "the last snapshot stays"
        );
        server.come_back().await;
        server.create("nodes", node("after", "172.16.0.9"));
        snapshot_where(&mut speaker, "both changes", |s| {
            s.services
                .contains_key(&ServiceKey::new("default", "during"))
                && s.nodes.contains_key("after")
        })
        .await;
        assert!(!speaker.task.is_finished(), "the speaker must survive");
    })
    .await;
}

/// The real binary, pointed at the fake server by a kubeconfig: ready once synced, the
/// snapshot in its metrics, a clean exit on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_its_view_in_metrics_and_stops_on_sigterm() {
    within(async {
        let server = FakeApiServer::start().await;
        cluster(&server);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = server.write_kubeconfig(dir.path());
        let kubeconfig = kubeconfig.display().to_string();
        let speaker = tokio::task::spawn_blocking(move || {
            let p = SpeakerProcess::start(
                &[
                    "--node",
                    "n1",
                    "--namespace",
                    NS,
                    "--dataplane",
                    "userspace",
                ],
                &[("KUBECONFIG", kubeconfig.as_str())],
            );
            let addr = p.metrics_addr();
            let metrics = support::wait_for("a ready speaker", || {
                let (status, _) = http_get(addr, "/readyz")?;
                (status == 200).then_some(())?;
                http_get(addr, "/metrics").map(|(_, body)| body)
            });
            (p, metrics)
        })
        .await
        .unwrap();
        let (process, metrics) = speaker;
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_snapshot_services"),
            Some(1.0)
        );
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_snapshot_loadbalancer_ips"),
            Some(1.0)
        );
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_snapshot_endpoints"),
            Some(2.0)
        );
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_dataplane{mode=\"userspace\"}"),
            Some(1.0)
        );
        assert_eq!(
            metric(&metrics, "ferrolb_speaker_dataplane{mode=\"nftables\"}"),
            Some(0.0)
        );
        // Another thread reads the log from a pipe: the line may land after the metric.
        let process = tokio::task::spawn_blocking(move || {
            support::wait_for("the snapshot's log line", || {
                process
                    .log()
                    .iter()
                    .any(|l| l.contains("snapshot: 1 services (1 with 1 LoadBalancer IPs)"))
                    .then_some(())
            });
            process
        })
        .await
        .unwrap();
        let clean = tokio::task::spawn_blocking(move || process.terminate())
            .await
            .unwrap();
        assert!(clean, "a clean exit on SIGTERM");
        // Its only writes: its own ConfigurationState (no Service here is announced).
        let writes = server.writes();
        assert!(!writes.is_empty(), "the ConfigurationState was written");
        for w in &writes {
            assert!(
                w.path
                    .contains("/namespaces/ferrolb-system/configurationstates/speaker."),
                "{}",
                w.path
            );
        }
    })
    .await;
}
