use super::*;
use crate::config::{ConfigObject, IPAddressPool, IPAddressPoolSpec, Source};
use crate::ipvs::model::{Frontend, VsKey};
use crate::manifest::{Manifest, parse_documents};

/// Parse one cluster object from YAML.
pub(crate) fn obj(yaml: &str) -> ClusterObject {
    let parsed = parse_documents("test.yaml", yaml);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    match parsed.objects.into_iter().next().map(|p| p.manifest) {
        Some(Manifest::Cluster(c)) => c,
        other => panic!("not a cluster object: {other:?}"),
    }
}

fn service(name: &str, ip: Option<&str>) -> ClusterObject {
    let status = ip
        .map(|ip| format!("status: {{loadBalancer: {{ingress: [{{ip: {ip}, ipMode: VIP}}]}}}}"))
        .unwrap_or_default();
    obj(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{type: LoadBalancer, clusterIP: 10.96.0.10, selector: {{app: {name}}}, \
         ports: [{{port: 80, targetPort: 8080, protocol: TCP}}]}}\n{status}\n"
    ))
}

fn slice(name: &str, service: &str, ips: &[&str]) -> ClusterObject {
    let endpoints: Vec<String> = ips
        .iter()
        .map(|ip| format!("{{addresses: [{ip}], conditions: {{ready: true}}, nodeName: n1}}"))
        .collect();
    obj(&format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}, namespace: default, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: IPv4\nports: [{{port: 8080, protocol: TCP}}]\nendpoints: [{}]\n",
        endpoints.join(", ")
    ))
}

fn node(name: &str, ip: &str) -> ClusterObject {
    obj(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n\
         status: {{addresses: [{{type: InternalIP, address: {ip}}}, {{type: Hostname, address: {name}}}]}}\n"
    ))
}

fn secret(name: &str) -> ClusterObject {
    obj(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: ferrolb-system}}\n\
         stringData: {{password: hunter2}}\ndata: {{password: aHVudGVyMg==}}\n"
    ))
}

fn config(pools: &[(&str, &str)]) -> ClusterEvent {
    let objects = pools
        .iter()
        .map(|(name, cidr)| {
            let p = IPAddressPool::new(
                name,
                IPAddressPoolSpec {
                    addresses: vec![(*cidr).into()],
                    ..Default::default()
                },
            );
            (Source::api(), ConfigObject::IPAddressPool(p))
        })
        .collect();
    ClusterEvent::Config {
        objects,
        errors: vec![],
    }
}

/// A builder that has seen a small cluster and its `Synced`.
fn synced() -> (SnapshotBuilder, Arc<Snapshot>) {
    let mut b = SnapshotBuilder::new("n1");
    for e in [
        config(&[("main", "192.0.2.0/24")]),
        ClusterEvent::Upsert(service("web", Some("192.0.2.1"))),
        ClusterEvent::Upsert(slice("web-abc", "web", &["10.1.0.1", "10.1.0.2"])),
        ClusterEvent::Upsert(node("n1", "172.16.0.1")),
        ClusterEvent::Upsert(node("n2", "172.16.0.2")),
        ClusterEvent::Upsert(secret("bgp")),
        ClusterEvent::Synced,
    ] {
        b.apply(e);
    }
    let first = b.publish().expect("a snapshot after Synced");
    (b, first)
}

#[test]
fn nothing_is_published_before_the_first_full_listing() {
    let mut b = SnapshotBuilder::new("n1");
    assert_eq!(
        b.apply(ClusterEvent::Upsert(service("web", None))),
        Applied::Objects
    );
    assert_eq!(
        b.apply(config(&[("main", "192.0.2.0/24")])),
        Applied::ConfigAccepted
    );
    assert!(b.publish().is_none(), "a partial listing must not be seen");
    assert_eq!(b.apply(ClusterEvent::Synced), Applied::Synced);
    let s = b.publish().expect("published once synced");
    assert_eq!(s.generation, 1);
    assert_eq!(s.services.len(), 1);
    assert!(s.config.is_some());
    assert!(b.publish().is_none(), "nothing changed since");
    assert_eq!(b.apply(ClusterEvent::Synced), Applied::Unchanged);
}

#[test]
fn the_first_snapshot_holds_the_whole_listing() {
    let (_, s) = synced();
    assert_eq!(s.node, "n1");
    let summary = s.summary();
    assert_eq!(
        summary,
        Summary {
            services: 1,
            services_with_ips: 1,
            lb_ips: 1,
            endpoint_slices: 1,
            endpoints: 2,
            nodes: 2,
            secrets: 1,
            config: ConfigStatus::Accepted,
            config_loaded: true,
        }
    );
    assert_eq!(
        summary.to_string(),
        "1 services (1 with 1 LoadBalancer IPs), 1 EndpointSlices (2 endpoints), 2 nodes, 1 secrets, config accepted"
    );
    assert!(s.config.as_ref().unwrap().pools.contains_key("main"));
}

#[test]
fn repeats_change_nothing_and_publish_nothing() {
    let (mut b, _) = synced();
    assert_eq!(
        b.apply(ClusterEvent::Upsert(service("web", Some("192.0.2.1")))),
        Applied::Unchanged
    );
    assert_eq!(
        b.apply(ClusterEvent::Delete(Kind::Node, ObjectKey::new("", "gone"))),
        Applied::Unchanged
    );
    assert_eq!(
        b.apply(config(&[("main", "192.0.2.0/24")])),
        Applied::Unchanged
    );
    assert!(b.publish().is_none());
}

#[test]
fn published_snapshots_never_change_afterwards() {
    let (mut b, first) = synced();
    b.apply(ClusterEvent::Upsert(service("web", Some("192.0.2.7"))));
    b.apply(ClusterEvent::Delete(Kind::Node, ObjectKey::new("", "n2")));
    let second = b.publish().expect("changed");
    assert_eq!(second.generation, 2);
    assert_eq!(
        status_ips(&first.services[&ServiceKey::new("default", "web")]),
        ["192.0.2.1".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(first.nodes.len(), 2);
    assert_eq!(
        status_ips(&second.services[&ServiceKey::new("default", "web")]),
        ["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(second.nodes.len(), 1);
    // Unchanged objects are shared, not copied.
    assert!(Arc::ptr_eq(
        &first.endpoint_slices[&ObjectKey::new("default", "web-abc")],
        &second.endpoint_slices[&ObjectKey::new("default", "web-abc")]
    ));
}

#[test]
fn endpoint_slices_are_found_by_their_service_and_follow_relabels() {
    let (mut b, s) = synced();
    let web = ServiceKey::new("default", "web");
    let api = ServiceKey::new("default", "api");
    assert_eq!(s.endpoint_slices_of(&web).count(), 1);
    b.apply(ClusterEvent::Upsert(slice("web-def", "web", &["10.1.0.3"])));
    // The same slice now labelled for another Service moves with its label.
    b.apply(ClusterEvent::Upsert(slice("web-abc", "api", &["10.1.0.1"])));
    let s = b.publish().unwrap();
    let names = |k: &ServiceKey| -> Vec<String> {
        s.endpoint_slices_of(k)
            .map(|e| e.name.to_string())
            .collect()
    };
    assert_eq!(names(&web), ["web-def"]);
    assert_eq!(names(&api), ["web-abc"]);
    b.apply(ClusterEvent::Delete(
        Kind::EndpointSlice,
        ObjectKey::new("default", "web-def"),
    ));
    let s = b.publish().unwrap();
    assert_eq!(s.endpoint_slices_of(&web).count(), 0);
    assert_eq!(s.summary().endpoints, 1);
}

#[test]
fn a_rejected_config_keeps_the_last_good_one_and_says_it_is_stale() {
    let (mut b, first) = synced();
    let good = first.config.clone().unwrap();
    let out = b.apply(config(&[("main", "192.0.2.0/24"), ("bad", "192.0.2.0/33")]));
    let Applied::ConfigRejected(errors) = out else {
        panic!("expected a rejection, got {out:?}");
    };
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("192.0.2.0/33"))
    );
    let s = b.publish().expect("stale is a change worth publishing");
    assert!(s.config_stale);
    assert_eq!(s.config_errors, errors);
    assert!(Arc::ptr_eq(s.config.as_ref().unwrap(), &good));
    assert_eq!(s.summary().config, ConfigStatus::Stale);

    assert_eq!(
        b.apply(config(&[("other", "198.51.100.0/24")])),
        Applied::ConfigAccepted
    );
    let s = b.publish().unwrap();
    assert!(!s.config_stale && s.config_errors.is_empty());
    assert!(s.config.as_ref().unwrap().pools.contains_key("other"));
}

#[test]
fn a_rejection_before_any_good_config_is_stale_with_nothing_in_force() {
    let mut b = SnapshotBuilder::new("n1");
    b.apply(config(&[("bad", "192.0.2.0/33")]));
    b.apply(ClusterEvent::Synced);
    let s = b.publish().unwrap();
    assert!(s.config.is_none() && s.config_stale);
    assert_eq!(s.summary().config, ConfigStatus::Stale);
}

#[test]
fn namespaces_are_not_kept() {
    let (mut b, _) = synced();
    let ns = obj("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n");
    assert_eq!(b.apply(ClusterEvent::Upsert(ns)), Applied::Unchanged);
}

#[test]
fn node_view_and_table_for_this_node() {
    let (_, s) = synced();
    let view = s.node_view();
    assert_eq!(view.name, "n1");
    assert_eq!(view.addresses, ["172.16.0.1".parse::<IpAddr>().unwrap()]);
    let (table, warnings) = s.table(&Options::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    let lb = table
        .servers
        .get(&VsKey {
            proto: crate::ipvs::model::Proto::Tcp,
            addr: "192.0.2.1".parse().unwrap(),
            port: 80,
        })
        .expect("a virtual server for the LoadBalancer IP");
    assert_eq!(lb.frontend, Frontend::LoadBalancer);
    assert_eq!(lb.real_servers.len(), 2);
}

#[test]
fn debug_output_never_shows_secret_data() {
    let (_, s) = synced();
    let text = format!("{s:?}");
    assert!(text.contains("bgp"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("aHVudGVy"),
        "{text}"
    );
}
