//! Fixtures for the Kubernetes-mode tests: objects as JSON, a controller running as a task,
//! polling with a deadline, and a check of every write against the shipped RBAC.

#![allow(dead_code)]

use ferrolb_controller::kubernetes::backoff::WatchBackoff;
use ferrolb_controller::kubernetes::{Options, run_with_client};
use ferrolb_controller::metrics::Metrics;
use ferrolb_fake_apiserver::FakeApiServer;
use ferrolb_shared::lease::LeaseTiming;
use ferrolb_shared::reconcile::Reconciler;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The controller's namespace (Lease, controller Events, pools).
pub const NS: &str = "ferrolb-system";
/// No test may take longer than this, so a bug never hangs CI.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Run `body` with the time limit.
pub async fn within<F: Future<Output = ()>>(body: F) {
    init_tracing();
    tokio::time::timeout(LIMIT, body)
        .await
        .expect("test exceeded its 30 s limit");
}

fn init_tracing() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

/// A controller running in-process; aborted when dropped.
pub struct Controller {
    pub identity: String,
    pub metrics: Arc<Metrics>,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Election timing for single-controller tests: fast retries, default durations.
pub fn quick_lease() -> LeaseTiming {
    LeaseTiming {
        retry_period: Duration::from_millis(200),
        ..LeaseTiming::default()
    }
}

pub fn start_controller(server: &FakeApiServer, identity: &str, lease: LeaseTiming) -> Controller {
    let metrics = Metrics::new();
    let mut options = Options::new(NS, identity);
    options.lease = lease;
    options.watch_backoff =
        WatchBackoff::new(Duration::from_millis(50), Duration::from_millis(500));
    let task = tokio::spawn(run_with_client(
        server.client(identity),
        Reconciler::new(None),
        metrics.clone(),
        options,
    ));
    Controller {
        identity: identity.into(),
        metrics,
        task,
    }
}

/// Poll `f` every 50 ms until it returns `Some`; panic with `what` after [`LIMIT`].
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

pub fn pool(name: &str, addresses: &[&str]) -> Value {
    json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": { "name": name, "namespace": NS },
        "spec": { "addresses": addresses },
    })
}

pub fn service(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "type": "LoadBalancer",
            "selector": { "app": name },
            "ports": [{ "port": 80, "protocol": "TCP" }],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
        },
    })
}

/// `svc` already carrying `ip` in its status (and, with `pool`, our annotation), as after
/// an earlier controller run.
pub fn with_status(mut svc: Value, ip: &str, pool: Option<&str>) -> Value {
    svc["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": ip, "ipMode": "VIP" }] } });
    if let Some(p) = pool {
        svc["metadata"]["annotations"] = json!({ "ferrolb.io/ip-allocated-from-pool": p });
    }
    svc
}

/// The standard cluster: namespaces `default` and [`NS`], and pool `main` of 8 addresses.
pub fn base_cluster(server: &FakeApiServer) {
    server.create("namespaces", namespace("default"));
    server.create("namespaces", namespace(NS));
    server.create("ferrolb.io/ipaddresspools", pool("main", &["10.0.0.0/29"]));
}

/// The ingress IPs of Service `default/name`, if it has any.
pub fn ips(server: &FakeApiServer, name: &str) -> Vec<String> {
    server
        .get("services", "default", name)
        .and_then(|s| s.pointer("/status/loadBalancer/ingress").cloned())
        .and_then(|i| i.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect()
}

/// The pool annotation of Service `default/name`.
pub fn pool_annotation(server: &FakeApiServer, name: &str) -> Option<String> {
    server
        .get("services", "default", name)?
        .pointer("/metadata/annotations/ferrolb.io~1ip-allocated-from-pool")?
        .as_str()
        .map(str::to_string)
}

/// Wait until Service `default/name` has exactly `ip` and the pool annotation `pool`.
pub async fn wait_for_ip(server: &FakeApiServer, name: &str, ip: &str, pool: &str) {
    eventually(&format!("{name} to get {ip} from {pool}"), || {
        (ips(server, name) == [ip] && pool_annotation(server, name).as_deref() == Some(pool))
            .then_some(())
    })
    .await;
}

/// Events with `reason` (in any namespace).
pub fn events(server: &FakeApiServer, reason: &str) -> Vec<Value> {
    server
        .list("events")
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

/// The holder of the controller's Lease.
pub fn lease_holder(server: &FakeApiServer) -> Option<String> {
    server
        .get("coordination.k8s.io/leases", NS, "ferrolb-controller")?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .map(str::to_string)
}

/// Every write the fake server answered must be allowed by `config/rbac/controller.yaml`:
/// what passes here also passes on a cluster with the shipped RBAC.
pub fn assert_writes_allowed_by_rbac(server: &FakeApiServer) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/rbac/controller.yaml"
    );
    let text = std::fs::read_to_string(path).expect("RBAC manifest");
    let mut rules: Vec<(String, String, String)> = Vec::new(); // (group, resource, verb)
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc: Value = serde::Deserialize::deserialize(doc).expect("RBAC YAML");
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for g in rule["apiGroups"].as_array().into_iter().flatten() {
                for r in rule["resources"].as_array().into_iter().flatten() {
                    for v in rule["verbs"].as_array().into_iter().flatten() {
                        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                        rules.push((s(g), s(r), s(v)));
                    }
                }
            }
        }
    }
    for w in server.writes() {
        let verb = match w.method.as_str() {
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            other => panic!("unexpected write method {other}"),
        };
        let (group, resource) = rbac_resource(&w.path);
        assert!(
            rules
                .iter()
                .any(|(g, r, v)| *g == group && *r == resource && v == verb),
            "{} {} ({verb} {group}/{resource}) is not granted by {path}",
            w.method,
            w.path
        );
    }
}

/// (apiGroup, resource[/subresource]) of a request path.
fn rbac_resource(path: &str) -> (String, String) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _, rest @ ..] => ("", rest),
        ["apis", g, _, rest @ ..] => (*g, rest),
        _ => panic!("odd path {path}"),
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let resource = match rest {
        [plural, _, sub] => format!("{plural}/{sub}"),
        [plural, ..] => plural.to_string(),
        [] => panic!("odd path {path}"),
    };
    (group.to_string(), resource)
}
