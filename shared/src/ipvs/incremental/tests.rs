use super::*;
use crate::cluster::{ClusterEvent, ClusterObject, Kind, ObjectKey};
use crate::snapshot::SnapshotBuilder;
use crate::snapshot::tests::obj;
use proptest::prelude::*;

/// Service `s<i>`: LoadBalancer with its own IP, ClusterIP and NodePort, and (for the
/// conflict rule) an external IP shared by every Service with the same `shared` number.
fn service(i: u8, port: u16, shared: u8, local: bool) -> ClusterObject {
    let policy = if local { "Local" } else { "Cluster" };
    obj(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\n\
         spec: {{type: LoadBalancer, clusterIP: 10.96.0.{i}, externalIPs: [198.51.100.{shared}], \
         externalTrafficPolicy: {policy}, healthCheckNodePort: {hc}, \
         ports: [{{port: {port}, targetPort: 8080, protocol: TCP, nodePort: {np}}}]}}\n\
         status: {{loadBalancer: {{ingress: [{{ip: 192.0.2.{i}}}]}}}}\n",
        hc = 32000 + u16::from(shared),
        np = 30000 + u16::from(i),
    ))
}

fn slice(service: u8, n: u8, endpoints: &[(u8, bool, bool)]) -> ClusterObject {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|(host, ready, on_n1)| {
            let node = if *on_n1 { "n1" } else { "n2" };
            format!(
                "{{addresses: [10.244.{service}.{host}], conditions: {{ready: {ready}, serving: true}}, nodeName: {node}}}"
            )
        })
        .collect();
    obj(&format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: s{service}-{n}, namespace: default, labels: {{kubernetes.io/service-name: s{service}}}}}\n\
         addressType: IPv4\nports: [{{port: 8080, protocol: TCP}}]\nendpoints: [{}]\n",
        eps.join(", ")
    ))
}

fn node(ip: u8) -> ClusterObject {
    obj(&format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n\
         status: {{addresses: [{{type: InternalIP, address: 172.16.0.{ip}}}]}}\n"
    ))
}

/// One change to the cluster.
#[derive(Clone, Debug)]
enum Step {
    Service {
        i: u8,
        port: u16,
        shared: u8,
        local: bool,
    },
    DeleteService(u8),
    Slice {
        service: u8,
        n: u8,
        endpoints: Vec<(u8, bool, bool)>,
    },
    DeleteSlice {
        service: u8,
        n: u8,
    },
    NodeAddress(u8),
}

impl Step {
    fn event(&self) -> ClusterEvent {
        match self {
            Step::Service {
                i,
                port,
                shared,
                local,
            } => ClusterEvent::Upsert(service(*i, *port, *shared, *local)),
            Step::DeleteService(i) => {
                ClusterEvent::Delete(Kind::Service, ObjectKey::new("default", format!("s{i}")))
            }
            Step::Slice {
                service,
                n,
                endpoints,
            } => ClusterEvent::Upsert(slice(*service, *n, endpoints)),
            Step::DeleteSlice { service, n } => ClusterEvent::Delete(
                Kind::EndpointSlice,
                ObjectKey::new("default", format!("s{service}-{n}")),
            ),
            Step::NodeAddress(ip) => ClusterEvent::Upsert(node(*ip)),
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    let id = 1u8..6;
    prop_oneof![
        4 => (id.clone(), prop_oneof![Just(80u16), Just(443)], 1u8..3, any::<bool>())
            .prop_map(|(i, port, shared, local)| Step::Service { i, port, shared, local }),
        1 => id.clone().prop_map(Step::DeleteService),
        4 => (id.clone(), 0u8..2, prop::collection::vec((1u8..5, any::<bool>(), any::<bool>()), 0..4))
            .prop_map(|(service, n, endpoints)| Step::Slice { service, n, endpoints }),
        1 => (id, 0u8..2).prop_map(|(service, n)| Step::DeleteSlice { service, n }),
        1 => (1u8..3).prop_map(Step::NodeAddress),
    ]
}

/// The changed keys between two whole tables.
fn differing(old: &Table, new: &Table) -> BTreeSet<VsKey> {
    let keys: BTreeSet<VsKey> = old
        .servers
        .keys()
        .chain(new.servers.keys())
        .copied()
        .collect();
    keys.into_iter()
        .filter(|k| old.servers.get(k) != new.servers.get(k))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// After any sequence of changes, published in any batching, the incremental table is
    /// exactly the whole build's, and every virtual server that changed is in the delta.
    #[test]
    fn incremental_table_equals_the_whole_build(
        batches in prop::collection::vec(
            (prop::collection::vec(step(), 1..4), prop::bool::weighted(0.2)),
            1..12,
        )
    ) {
        let options = Options::default();
        let mut snapshots = SnapshotBuilder::new("n1");
        snapshots.apply(ClusterEvent::Upsert(node(1)));
        snapshots.apply(ClusterEvent::Synced);
        let mut builder = TableBuilder::new(options.clone());
        let mut previous = Table::default();
        for (batch, skipped) in &batches {
            for s in batch {
                snapshots.apply(s.event());
            }
            let Some(snapshot) = snapshots.publish() else { continue };
            if *skipped {
                // A consumer that misses a generation (a watch channel keeps the newest).
                continue;
            }
            let delta = builder.update(&snapshot);
            let (whole, _) = snapshot.table(&options);
            prop_assert_eq!(builder.table(), &whole);
            let changed = differing(&previous, &whole);
            prop_assert!(changed.is_subset(&delta.servers), "{:?} not in {:?}", changed, delta.servers);
            if previous.health_checks != whole.health_checks {
                prop_assert!(delta.health_checks);
            }
            previous = whole;
        }
    }
}

#[test]
fn an_unchanged_snapshot_rebuilds_nothing_and_one_slice_rebuilds_one_service() {
    let mut snapshots = SnapshotBuilder::new("n1");
    for e in [
        ClusterEvent::Upsert(node(1)),
        ClusterEvent::Upsert(service(1, 80, 1, false)),
        ClusterEvent::Upsert(service(2, 80, 2, false)),
        ClusterEvent::Upsert(slice(1, 0, &[(1, true, true)])),
        ClusterEvent::Upsert(slice(2, 0, &[(1, true, true)])),
        ClusterEvent::Synced,
    ] {
        snapshots.apply(e);
    }
    let mut builder = TableBuilder::new(Options::default());
    let first = builder.update(&snapshots.publish().unwrap());
    assert!(first.full);
    assert_eq!(first.servers.len(), builder.table().servers.len());
    // A Node label change publishes a snapshot without changing any Service's inputs.
    snapshots.apply(ClusterEvent::Upsert(obj(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n2}\n",
    )));
    let same = builder.update(&snapshots.publish().unwrap());
    assert!(same.is_empty() && !same.full, "{same:?}");
    snapshots.apply(ClusterEvent::Upsert(slice(
        2,
        0,
        &[(1, true, true), (2, true, false)],
    )));
    let one = builder.update(&snapshots.publish().unwrap());
    assert!(!one.full);
    assert!(!one.servers.is_empty());
    let services: BTreeSet<String> = one
        .servers
        .iter()
        .map(|k| builder.table().servers[k].service.name.clone())
        .collect();
    assert_eq!(services, BTreeSet::from(["s2".to_string()]));
}

#[test]
fn when_the_winning_claimant_leaves_the_next_one_takes_the_virtual_server() {
    let mut snapshots = SnapshotBuilder::new("n1");
    for e in [
        ClusterEvent::Upsert(node(1)),
        ClusterEvent::Upsert(service(1, 80, 1, false)),
        ClusterEvent::Upsert(service(2, 80, 1, false)),
        ClusterEvent::Synced,
    ] {
        snapshots.apply(e);
    }
    let mut builder = TableBuilder::new(Options::default());
    builder.update(&snapshots.publish().unwrap());
    let shared = VsKey {
        proto: crate::ipvs::model::Proto::Tcp,
        addr: "198.51.100.1".parse().unwrap(),
        port: 80,
    };
    assert_eq!(builder.table().servers[&shared].service.name, "s2");
    snapshots.apply(Step::DeleteService(2).event());
    let delta = builder.update(&snapshots.publish().unwrap());
    assert!(delta.servers.contains(&shared));
    assert_eq!(builder.table().servers[&shared].service.name, "s1");
}
