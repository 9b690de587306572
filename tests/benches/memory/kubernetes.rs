//! Kubernetes mode: the fake API server (`ferrolb-fake-apiserver`, in this process), listening
//! on 127.0.0.1 inside the bench's network namespace, where both binaries reach it through a
//! kubeconfig. Namespaces, Nodes and the config are created before the binaries start; each
//! Service is created in the server's store directly (no HTTP round trip per object: 20,000
//! objects take well under a second), followed by its EndpointSlice, as the EndpointSlice
//! controller would. The binaries see them through their watches and the controller writes
//! the addresses to the Services' status over HTTP, as on a cluster.

use crate::Settings;
use crate::cleanup::Namespace;
use crate::measure::{self, Pair, Point};
use crate::objects::{Objects, SYSTEM_NS};
use crate::standalone::{args, speaker_args};
use ferrolb_fake_apiserver::FakeApiServer;
use serde_json::json;

pub fn run(settings: &Settings) -> anyhow::Result<Vec<Point>> {
    let tmp = tempfile::Builder::new()
        .prefix("ferrolb-memory-")
        .tempdir()?;
    let ns = Namespace::new("k8s")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Bound in the namespace: the listening socket is opened by a thread that entered it.
    let server = ns.0.enter(|| runtime.block_on(FakeApiServer::start()));
    let result = (|| {
        note!("fake API server at {} in {}", server.url(), ns.0.name());
        let mut objects = Objects::new(settings.services, settings.endpoints);
        for o in objects.namespaces() {
            server.create("namespaces", o);
        }
        for o in objects.nodes() {
            server.create("nodes", o);
        }
        for o in objects.config() {
            let resource = match o["kind"].as_str() {
                Some("IPAddressPool") => "ferrolb.io/ipaddresspools",
                Some("L2Advertisement") => "ferrolb.io/l2advertisements",
                other => anyhow::bail!("no resource for config kind {other:?}"),
            };
            server.create(resource, o);
        }
        let kubeconfig = server
            .write_kubeconfig(tmp.path())
            .to_string_lossy()
            .into_owned();
        let mut pair = Pair::start(
            &ns.0,
            tmp.path(),
            (
                args(&["--namespace", SYSTEM_NS, "--log", "info"]),
                vec![
                    ("KUBECONFIG", kubeconfig.clone()),
                    ("FERROLB_POD_NAME", "ferrolb-controller-0".into()),
                ],
            ),
            (
                speaker_args(tmp.path(), &["--namespace", SYSTEM_NS]),
                vec![("KUBECONFIG", kubeconfig)],
            ),
        )?;
        measure::run(&mut pair, settings, |range| {
            for i in range {
                let mut svc = objects.service(i);
                svc["status"] = json!({ "loadBalancer": {} });
                let created = server.create("services", svc);
                let uid = created["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                server.create("discovery.k8s.io/endpointslices", objects.slice(i, &uid));
            }
            Ok(())
        })
    })();
    // The binaries are gone (dropped with the pair); then the server, then its runtime.
    drop(server);
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
