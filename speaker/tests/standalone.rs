//! The speaker binary in standalone mode, end to end: a real process on a temporary manifest
//! directory, with the controller's status directory written by the test (as the controller
//! writes it: whole files, atomically). What the speaker sees is read from its `/metrics` and
//! its log, over 127.0.0.1.

mod support;

use std::path::{Path, PathBuf};
use support::{SpeakerProcess, http_get, metric, wait_for};

const SERVICES: &str = "\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {type: LoadBalancer, clusterIP: 10.96.0.11, selector: {app: api}, ports: [{port: 443}]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 172.16.0.1}]}
";

fn slice(ips: &[&str]) -> String {
    let endpoints: Vec<String> = ips
        .iter()
        .map(|ip| format!("{{addresses: [{ip}], conditions: {{ready: true}}, nodeName: n1}}"))
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\nports: [{{port: 8080}}]\nendpoints: [{}]\n",
        endpoints.join(", ")
    )
}

/// Write the status file of `default/<name>` as the controller does.
fn write_status(status: &Path, name: &str, ip: &str) {
    let path = status.join("services/default").join(format!("{name}.yaml"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  annotations:\n    ferrolb.io/ip-allocated-from-pool: default\n  name: {name}\n  namespace: default\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: {ip}\n      ipMode: VIP\n"
    );
    let tmp = path.with_extension("tmp1");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

struct Setup {
    _tmp: tempfile::TempDir,
    manifests: PathBuf,
    status: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("lb");
    std::fs::create_dir_all(&manifests).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    std::fs::copy(examples.join("pools.yaml"), manifests.join("pools.yaml")).unwrap();
    std::fs::write(manifests.join("services.yaml"), SERVICES).unwrap();
    std::fs::write(
        manifests.join("slice.yaml"),
        slice(&["10.1.0.1", "10.1.0.2"]),
    )
    .unwrap();
    // The default status directory: `<manifests>.status`, beside it.
    let status = tmp.path().join("lb.status");
    Setup {
        _tmp: tmp,
        manifests,
        status,
    }
}

/// Wait until the metric `name` has `value`; returns the whole metrics text.
fn wait_metric(addr: std::net::SocketAddr, name: &str, value: f64) -> String {
    wait_for(&format!("{name} = {value}"), || {
        let (_, body) = http_get(addr, "/metrics")?;
        (metric(&body, name) == Some(value)).then_some(body)
    })
}

#[test]
fn the_snapshot_follows_manifests_and_the_controllers_status_files() {
    let s = setup();
    write_status(&s.status, "web", "198.51.100.2");
    let speaker = SpeakerProcess::start(
        &[
            "--node",
            "n1",
            "--manifests",
            s.manifests.to_str().unwrap(),
            "--dataplane",
            "none",
        ],
        &[],
    );
    let addr = speaker.metrics_addr();
    let body = wait_metric(addr, "ferrolb_speaker_snapshot_services", 2.0);
    assert_eq!(http_get(addr, "/readyz").map(|r| r.0), Some(200));
    assert_eq!(http_get(addr, "/healthz").map(|r| r.0), Some(200));
    for (name, value) in [
        ("ferrolb_speaker_snapshot_loadbalancer_ips", 1.0),
        ("ferrolb_speaker_snapshot_endpoint_slices", 1.0),
        ("ferrolb_speaker_snapshot_endpoints", 2.0),
        ("ferrolb_speaker_snapshot_nodes", 1.0),
        ("ferrolb_speaker_config_loaded", 1.0),
        ("ferrolb_speaker_config_stale", 0.0),
        ("ferrolb_speaker_dataplane{mode=\"none\"}", 1.0),
    ] {
        assert_eq!(metric(&body, name), Some(value), "{name}\n{body}");
    }
    // Another thread reads the log from a pipe: the line may land after the metric.
    wait_for("the snapshot's log line", || {
        speaker.log().iter().any(|l| l.contains(
            "snapshot: 2 services (1 with 1 LoadBalancer IPs), 1 EndpointSlices (2 endpoints), 1 nodes, 0 secrets, config accepted"
        )).then_some(())
    });

    // The controller gives api an address: seen through the watched status directory.
    write_status(&s.status, "api", "198.51.100.3");
    wait_metric(addr, "ferrolb_speaker_snapshot_loadbalancer_ips", 2.0);
    // An endpoint more.
    let slice_file = s.manifests.join("slice.yaml");
    std::fs::write(&slice_file, slice(&["10.1.0.1", "10.1.0.2", "10.1.0.3"])).unwrap();
    wait_metric(addr, "ferrolb_speaker_snapshot_endpoints", 3.0);
    // The controller clears web's status.
    std::fs::remove_file(s.status.join("services/default/web.yaml")).unwrap();
    wait_metric(addr, "ferrolb_speaker_snapshot_loadbalancer_ips", 1.0);

    // A broken pool: the last good config stays, flagged stale, and the log says why.
    let bad = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: broken}\nspec: {addresses: [10.0.0.0/40]}\n";
    std::fs::write(s.manifests.join("broken.yaml"), bad).unwrap();
    let body = wait_metric(addr, "ferrolb_speaker_config_stale", 1.0);
    assert_eq!(metric(&body, "ferrolb_speaker_config_loaded"), Some(1.0));
    wait_for("the rejection in the log", || {
        speaker
            .log()
            .iter()
            .any(|l| l.contains("broken.yaml (document 1): IPAddressPool \"broken\""))
            .then_some(())
    });
    // The speaker's own ConfigurationState says so, beside its other reports.
    let state_file =
        ferrolb_cluster::files::speaker_report_dir(&s.status, "n1").join("configurationstate.yaml");
    let state = |result: &str| {
        let text = std::fs::read_to_string(&state_file).ok()?;
        let v: serde_json::Value = serde_yaml::from_str(&text).ok()?;
        (v["status"]["result"] == result).then_some(v)
    };
    let invalid = wait_for("an Invalid speaker ConfigurationState", || state("Invalid"));
    assert_eq!(invalid["metadata"]["name"], "speaker.n1");
    assert_eq!(invalid["status"]["node"], "n1");
    assert!(
        invalid["status"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("IPAddressPool \"broken\""),
        "{invalid}"
    );
    std::fs::remove_file(s.manifests.join("broken.yaml")).unwrap();
    wait_metric(addr, "ferrolb_speaker_config_stale", 0.0);
    wait_for("a Valid speaker ConfigurationState", || state("Valid"));

    assert!(speaker.terminate(), "a clean exit on SIGTERM");
}

#[test]
fn a_missing_manifest_directory_is_an_error_exit() {
    let mut speaker = SpeakerProcess::start(
        &[
            "--node",
            "n1",
            "--manifests",
            "/nonexistent/ferrolb-speaker",
        ],
        &[],
    );
    let status = wait_for("the speaker to exit", || speaker.child.try_wait().unwrap());
    assert!(!status.success());
}
