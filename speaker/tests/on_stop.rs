//! `--on-stop auto` against the fake API server: the speaker's lookup of its pod and the
//! pod's DaemonSet (real HTTP, real kube client) and the decision it leads to, then the real
//! binary on SIGTERM (`FERROLB_POD_NAME` as the DaemonSet sets it). Every answer the API can
//! give is set up here; the decision's own table is unit-tested in `ferrolb_shared::stop`.
//! (403, the uninstall's deleted RBAC, needs a real API server: the fake has no RBAC.)

mod support;

use ferrolb_fake_apiserver::FakeApiServer;
use ferrolb_shared::stop::{Facts, OnStop, StopKind};
use ferrolb_speaker::on_stop::{PodRef, choose, lookup};
use serde_json::{Value, json};

const NS: &str = "ferrolb-system";
const POD: &str = "ferrolb-speaker-x7k2p";
const DS: &str = "ferrolb-speaker";
const DELETED: &str = "2026-01-01T00:00:00Z";

fn pod(owner: Option<&str>, deleting: bool) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": POD, "namespace": NS },
        "spec": { "containers": [{ "name": "speaker" }] },
    });
    if let Some(owner) = owner {
        p["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner,
            "uid": "5b0d4c9e-0000-4000-8000-000000000001", "controller": true,
        }]);
    }
    if deleting {
        p["metadata"]["deletionTimestamp"] = json!(DELETED);
    }
    p
}

fn daemonset(deleting: bool) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": { "name": DS, "namespace": NS },
        "spec": {
            "selector": { "matchLabels": { "app": "speaker" } },
            "template": { "metadata": { "labels": { "app": "speaker" } },
                          "spec": { "containers": [{ "name": "speaker" }] } },
        },
    });
    if deleting {
        d["metadata"]["deletionTimestamp"] = json!(DELETED);
    }
    d
}

/// A fake API server with the speaker's namespace.
async fn fake() -> FakeApiServer {
    let server = FakeApiServer::start().await;
    server.create(
        "namespaces",
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NS } }),
    );
    server
}

fn at(server: &FakeApiServer, pod: Option<&str>) -> PodRef {
    PodRef {
        client: server.client("speaker"),
        namespace: NS.to_string(),
        pod: pod.map(str::to_string),
    }
}

#[tokio::test]
async fn auto_keeps_while_the_daemonset_replaces_the_pod_and_cleans_otherwise() {
    let server = fake().await;
    let me = at(&server, Some(POD));
    let found = |pod_deleting, daemonset, daemonset_deleting| Facts::Found {
        pod_deleting,
        daemonset,
        daemonset_deleting,
    };
    // No pod name from the downward API, then no pod.
    assert_eq!(lookup(&at(&server, None)).await, Facts::NoPodName);
    assert_eq!(lookup(&me).await, Facts::PodGone);
    // A pod nobody owns.
    server.create("pods", pod(None, true));
    assert_eq!(lookup(&me).await, Facts::NoDaemonSet);
    // A rolling update: the DaemonSet controller deleted the pod, the DaemonSet stays.
    server.delete("pods", NS, POD);
    server.create("pods", pod(Some(DS), true));
    server.create("apps/daemonsets", daemonset(false));
    assert_eq!(lookup(&me).await, found(true, true, false));
    assert_eq!(choose(OnStop::Auto, Some(&me)).await.0, StopKind::Keep);
    // The explicit flags need no lookup, and standalone mode is clean.
    assert_eq!(choose(OnStop::Clean, Some(&me)).await.0, StopKind::Clean);
    assert_eq!(choose(OnStop::Auto, None).await.0, StopKind::Clean);
    // The kubelet stops the container without deleting the pod (node shutdown): clean.
    server.update("pods", NS, POD, |p| {
        p["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("deletionTimestamp");
    });
    assert_eq!(lookup(&me).await, found(false, true, false));
    assert_eq!(choose(OnStop::Auto, Some(&me)).await.0, StopKind::Clean);
    // An uninstall: the DaemonSet is being deleted, then gone.
    server.update("pods", NS, POD, |p| {
        p["metadata"]["deletionTimestamp"] = json!(DELETED);
    });
    server.update("apps/daemonsets", NS, DS, |d| {
        d["metadata"]["deletionTimestamp"] = json!(DELETED);
    });
    assert_eq!(lookup(&me).await, found(true, true, true));
    assert_eq!(choose(OnStop::Auto, Some(&me)).await.0, StopKind::Clean);
    server.delete("apps/daemonsets", NS, DS);
    assert_eq!(lookup(&me).await, found(true, false, false));
    let (kind, why) = choose(OnStop::Auto, Some(&me)).await;
    assert_eq!(kind, StopKind::Clean);
    assert!(why.contains("the DaemonSet is gone"), "{why}");
}

#[tokio::test]
async fn auto_cleans_when_the_api_server_does_not_answer() {
    let server = fake().await;
    server.create("pods", pod(Some(DS), true));
    server.create("apps/daemonsets", daemonset(false));
    let me = at(&server, Some(POD));
    server.go_away().await;
    let started = std::time::Instant::now();
    let (kind, why) = choose(OnStop::Auto, Some(&me)).await;
    assert_eq!(kind, StopKind::Clean, "{why}");
    assert!(why.contains("the lookup failed"), "{why}");
    // Bounded, so the pod's termination grace period is left for the stop itself.
    assert!(
        started.elapsed()
            <= ferrolb_speaker::on_stop::LOOKUP_LIMIT + std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// The binary in Kubernetes mode, pointed at the fake server by a kubeconfig, with its pod
/// name from the environment: SIGTERM during a rolling update keeps, after the DaemonSet's
/// deletion cleans (data path `none`: these speakers run in the root namespace and must
/// program nothing there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_chooses_on_sigterm_from_what_the_api_server_says() {
    let server = fake().await;
    server.create("pods", pod(Some(DS), true));
    server.create("apps/daemonsets", daemonset(false));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).display().to_string();
    let stop = move || {
        let p = support::SpeakerProcess::start(
            &["--node", "n1", "--namespace", NS, "--dataplane", "none"],
            &[
                ("KUBECONFIG", kubeconfig.as_str()),
                ("FERROLB_POD_NAME", POD),
            ],
        );
        let addr = p.metrics_addr();
        support::wait_for("a ready speaker", || {
            (support::http_get(addr, "/readyz")?.0 == 200).then_some(())
        });
        let (clean, log) = p.terminate_logged();
        assert!(clean, "an exit without error: {log:?}");
        log.into_iter().find(|l| l.contains("shutting down: "))
    };
    let updating = tokio::task::spawn_blocking(stop.clone()).await.unwrap();
    let updating = updating.expect("the stop is logged");
    assert!(
        updating.contains("--on-stop auto: the DaemonSet replaces this pod"),
        "{updating}"
    );
    server.delete("apps/daemonsets", NS, DS);
    let uninstalling = tokio::task::spawn_blocking(stop).await.unwrap();
    let uninstalling = uninstalling.expect("the stop is logged");
    assert!(
        uninstalling.contains("--on-stop auto: the DaemonSet is gone"),
        "{uninstalling}"
    );
}
