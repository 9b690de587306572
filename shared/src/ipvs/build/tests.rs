use super::*;
use crate::manifest::{ClusterObject, Manifest, parse_documents};

/// Services and EndpointSlices from YAML, the way the standalone source reads them.
fn objects(text: &str) -> (Vec<Service>, Vec<Slice>) {
    let f = parse_documents("t.yaml", text);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    let (mut services, mut slices) = (Vec::new(), Vec::new());
    for p in f.objects {
        match p.manifest {
            Manifest::Cluster(ClusterObject::Service(s)) => {
                services.push(std::sync::Arc::unwrap_or_clone(s))
            }
            Manifest::Cluster(ClusterObject::EndpointSlice(s)) => {
                slices.push(std::sync::Arc::unwrap_or_clone(s))
            }
            _ => {}
        }
    }
    (services, slices)
}

fn node() -> NodeView {
    NodeView {
        name: "node1".into(),
        addresses: vec![
            "10.100.0.11".parse().unwrap(),
            "fd00:100::11".parse().unwrap(),
        ],
    }
}

fn table(text: &str) -> (Table, Vec<Warning>) {
    let (s, e) = objects(text);
    build_table(&s, &e, &node(), &Options::default())
}

fn vs<'a>(t: &'a Table, proto: Proto, addr: &str, port: u16) -> &'a VirtualServer {
    let key = VsKey {
        proto,
        addr: addr.parse().unwrap(),
        port,
    };
    t.servers.get(&key).unwrap_or_else(|| {
        panic!(
            "no virtual server {key}; have {:?}",
            t.servers.keys().collect::<Vec<_>>()
        )
    })
}

fn backends(v: &VirtualServer) -> Vec<String> {
    v.real_servers
        .iter()
        .map(|r| format!("{}:{}", r.addr, r.port))
        .collect()
}

const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96::10"]
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080, protocol: TCP}]
status:
  loadBalancer: {ingress: [{ip: 10.100.0.200}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - {addresses: [10.244.1.10], nodeName: node1, conditions: {ready: true}, targetRef: {kind: Pod, name: web-1}}
  - {addresses: [10.244.2.10], nodeName: node2}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-b, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 9090, protocol: TCP}]
endpoints:
  - {addresses: [10.244.3.10], nodeName: node3}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - {addresses: ["fd00:244:1::10"], nodeName: node1}
"#;

#[test]
fn every_frontend_gets_a_virtual_server() {
    let (t, w) = table(WEB);
    assert!(w.is_empty(), "{w:?}");
    let keys: Vec<String> = t.servers.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        keys,
        [
            "tcp/10.96.0.10:80",
            "tcp/10.100.0.11:30080",
            "tcp/10.100.0.200:80",
            "tcp/[fd00:96::10]:80",
            "tcp/[fd00:100::11]:30080"
        ]
    );
    let lb = vs(&t, Proto::Tcp, "10.100.0.200", 80);
    assert_eq!(lb.frontend, Frontend::LoadBalancer);
    assert!(lb.masquerade && !lb.drop);
    assert_eq!(lb.scheduler, SchedulerKind::Rr);
    // The named target port is resolved per slice: two pods on 8080, one on 9090.
    assert_eq!(
        backends(lb),
        ["10.244.1.10:8080", "10.244.2.10:8080", "10.244.3.10:9090"]
    );
    assert_eq!(lb.real_servers[0].name, "web-1");
    assert!(lb.real_servers[0].local && !lb.real_servers[1].local);
    // IPv6 virtual servers get only IPv6 real servers.
    assert_eq!(
        backends(vs(&t, Proto::Tcp, "fd00:96::10", 80)),
        ["fd00:244:1::10:8080"]
    );
    assert!(
        !vs(&t, Proto::Tcp, "10.96.0.10", 80).masquerade,
        "ClusterIP traffic is not masqueraded here"
    );
}

#[test]
fn headless_and_external_name_are_skipped() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: None, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec: {type: ExternalName, externalName: example.com}\n";
    assert!(table(text).0.servers.is_empty());
}

#[test]
fn ready_first_then_serving_terminating() {
    let text = r#"
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s1, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
ports: [{port: 80}]
endpoints:
  - {addresses: [10.244.1.1], conditions: {ready: true}}
  - {addresses: [10.244.1.2], conditions: {ready: false, serving: true, terminating: true}}
  - {addresses: [10.244.1.3], conditions: {ready: false, serving: false, terminating: true}}
  - {addresses: [10.244.1.4], conditions: {ready: false}}
"#;
    assert_eq!(
        backends(vs(&table(text).0, Proto::Tcp, "10.96.0.1", 80)),
        ["10.244.1.1:80"]
    );
    let only_terminating = text.replace(
        "{addresses: [10.244.1.1], conditions: {ready: true}}",
        "{addresses: [10.244.1.1], conditions: {ready: false}}",
    );
    let v = vs(&table(&only_terminating).0, Proto::Tcp, "10.96.0.1", 80).clone();
    assert_eq!(backends(&v), ["10.244.1.2:80"]);
    assert_eq!(v.real_servers[0].state, EndpointState::Terminating);
}

#[test]
fn external_traffic_policy_local() {
    let local = WEB.replace(
        "type: LoadBalancer",
        "type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000",
    );
    let (t, _) = table(&local);
    let lb = vs(&t, Proto::Tcp, "10.100.0.200", 80);
    assert!(!lb.masquerade, "Local keeps the client address");
    assert_eq!(
        backends(lb),
        ["10.244.1.10:8080"],
        "only this node's endpoints"
    );
    assert_eq!(
        t.health_checks[&32000].local_endpoints, 1,
        "one dual-stack endpoint here: IPv4 and IPv6 addresses of one pod count once"
    );
    // ClusterIP traffic is governed by internalTrafficPolicy, still Cluster.
    assert_eq!(vs(&t, Proto::Tcp, "10.96.0.10", 80).real_servers.len(), 3);
    // On a node without local endpoints: drop, and the health check says so.
    let (s, e) = objects(&local);
    let other = NodeView {
        name: "node9".into(),
        addresses: vec!["10.100.0.19".parse().unwrap()],
    };
    let (t, _) = build_table(&s, &e, &other, &Options::default());
    let lb = vs(&t, Proto::Tcp, "10.100.0.200", 80);
    assert!(lb.drop && lb.real_servers.is_empty());
    assert!(vs(&t, Proto::Tcp, "10.100.0.19", 30080).drop);
    assert_eq!(t.health_checks[&32000].local_endpoints, 0);
}

#[test]
fn internal_traffic_policy_local() {
    let text = WEB.replace(
        "type: LoadBalancer",
        "type: LoadBalancer\n  internalTrafficPolicy: Local",
    );
    let (t, _) = table(&text);
    assert_eq!(
        backends(vs(&t, Proto::Tcp, "10.96.0.10", 80)),
        ["10.244.1.10:8080"]
    );
    assert_eq!(vs(&t, Proto::Tcp, "10.100.0.200", 80).real_servers.len(), 3);
}

#[test]
fn session_affinity() {
    let text = WEB.replace(
        "type: LoadBalancer",
        "type: LoadBalancer\n  sessionAffinity: ClientIP",
    );
    assert_eq!(
        vs(&table(&text).0, Proto::Tcp, "10.96.0.10", 80).affinity,
        Some(DEFAULT_AFFINITY)
    );
    let text = WEB.replace(
        "type: LoadBalancer",
        "type: LoadBalancer\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}",
    );
    assert_eq!(
        vs(&table(&text).0, Proto::Tcp, "10.96.0.10", 80).affinity,
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        vs(&table(WEB).0, Proto::Tcp, "10.96.0.10", 80).affinity,
        None
    );
}

#[test]
fn scheduler_annotation_and_bad_values() {
    let text = WEB.replace(
        "namespace: default}\nspec:\n  type",
        "namespace: default, annotations: {ferrolb.io/scheduler: mh}}\nspec:\n  type",
    );
    assert_eq!(
        vs(&table(&text).0, Proto::Tcp, "10.96.0.10", 80).scheduler,
        SchedulerKind::Mh
    );
    let bad = text.replace("scheduler: mh", "scheduler: fastest");
    let (t, w) = table(&bad);
    assert_eq!(
        vs(&t, Proto::Tcp, "10.96.0.10", 80).scheduler,
        SchedulerKind::Rr
    );
    assert!(w[0].message.contains("fastest"), "{w:?}");
}

#[test]
fn scheduler_flags_for_sh_and_mh_only() {
    let with = |scheduler: &str, flags: &str| {
        WEB.replace(
            "namespace: default}\nspec:\n  type",
            &format!(
                "namespace: default, annotations: {{ferrolb.io/scheduler: {scheduler}, ferrolb.io/scheduler-flags: '{flags}'}}}}\nspec:\n  type"
            ),
        )
    };
    let (t, w) = table(&with("mh", "fallback, port"));
    let flags = vs(&t, Proto::Tcp, "10.96.0.10", 80).scheduler_flags;
    assert_eq!(
        (flags.fallback, flags.port, w.len()),
        (true, true, 0),
        "{w:?}"
    );
    let (t, w) = table(&with("sh", "port"));
    let flags = vs(&t, Proto::Tcp, "10.96.0.10", 80).scheduler_flags;
    assert_eq!(
        (flags.fallback, flags.port, w.len()),
        (false, true, 0),
        "{w:?}"
    );
    let (t, w) = table(&with("rr", "port"));
    assert!(!vs(&t, Proto::Tcp, "10.96.0.10", 80).scheduler_flags.any());
    assert_eq!(
        w[0].message,
        "annotation ferrolb.io/scheduler-flags: port applies to the sh and mh schedulers only, not rr; ignored"
    );
    let (t, w) = table(&with("mh", "port,sticky"));
    assert!(!vs(&t, Proto::Tcp, "10.96.0.10", 80).scheduler_flags.any());
    assert_eq!(
        w[0].message,
        "annotation ferrolb.io/scheduler-flags: unknown scheduler flag \"sticky\": use fallback, port or both (comma-separated); ignored"
    );
}

#[test]
fn node_ports_outside_the_range_are_refused() {
    let (t, w) = table(&WEB.replace("nodePort: 30080", "nodePort: 80"));
    assert!(
        !t.servers
            .keys()
            .any(|k| k.port == 80 && k.addr.to_string() == "10.100.0.11")
    );
    assert!(
        w[0].message.contains("outside the range 30000-32767"),
        "{w:?}"
    );
}

#[test]
fn udp_and_sctp() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: d}\nspec: {clusterIP: 10.96.0.53, ports: [{name: dns, port: 53, protocol: UDP}, {name: s, port: 9, protocol: SCTP}]}\n";
    let (t, _) = table(text);
    vs(&t, Proto::Udp, "10.96.0.53", 53);
    vs(&t, Proto::Sctp, "10.96.0.53", 9);
}

#[test]
fn diff_touches_only_what_changed() {
    let two = format!(
        "{WEB}---\napiVersion: v1\nkind: Service\nmetadata: {{name: other}}\nspec: {{clusterIP: 10.96.0.99, ports: [{{port: 1}}]}}\n"
    );
    let (before, _) = table(&two);
    assert_eq!(Table::default().diff(&before).len(), before.servers.len());
    assert!(before.diff(&before).is_empty());
    let changed = two.replace(
        "10.244.3.10], nodeName: node3",
        "10.244.3.11], nodeName: node3",
    );
    let (after, _) = table(&changed);
    let changes = before.diff(&after);
    assert!(!changes.is_empty());
    for c in &changes {
        let Change::Update(v) = c else {
            panic!("{c:?}")
        };
        assert_eq!(v.service.name, "web");
    }
    let removed = table(WEB).0;
    assert_eq!(
        before.diff(&removed),
        [Change::Remove(VsKey {
            proto: Proto::Tcp,
            addr: "10.96.0.99".parse().unwrap(),
            port: 1
        })]
    );
}
