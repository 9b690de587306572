use super::*;
use ferrolb_shared::cluster::ObjectKey;
use std::net::IpAddr;

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n";
const SLICE: &str = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.1]}]\n";

struct Dirs {
    _tmp: tempfile::TempDir,
    manifests: PathBuf,
    status: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("m");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("svc.yaml"), format!("{SERVICE}---\n{SLICE}")).unwrap();
    let status = tmp.path().join("m.status");
    Dirs {
        _tmp: tmp,
        manifests,
        status,
    }
}

/// Write a status file the way the controller does: to a temporary file, then rename.
fn write_status(status: &Path, ip: &str) {
    let path = status_path(status, &ServiceKey::new("default", "web"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n  annotations: {{ferrolb.io/ip-allocated-from-pool: main}}\nstatus:\n  loadBalancer:\n    ingress: [{{ip: {ip}, ipMode: VIP}}]\n"
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn speaker_source(d: &Dirs) -> DirectorySource {
    DirectorySource::new(
        d.manifests.clone(),
        Subscription::new([Kind::Service, Kind::EndpointSlice]),
        StatusDir::Follow(d.status.clone()),
    )
}

/// The LoadBalancer IPs of the Service upserts in `events`.
fn upserted_ips(events: &[ClusterEvent]) -> Vec<Vec<IpAddr>> {
    events
        .iter()
        .filter_map(|e| match e {
            ClusterEvent::Upsert(ClusterObject::Service(s)) => {
                Some(service::status_ips(s).to_vec())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn follow_mode_tracks_status_files() {
    let d = dirs();
    let mut src = speaker_source(&d);
    let first = src.scan();
    assert_eq!(upserted_ips(&first), [Vec::<IpAddr>::new()]);
    assert!(
        first
            .iter()
            .any(|e| matches!(e, ClusterEvent::Upsert(ClusterObject::EndpointSlice(_))))
    );
    assert!(src.scan().is_empty(), "nothing changed");

    write_status(&d.status, "192.0.2.1");
    let events = src.scan();
    assert_eq!(
        upserted_ips(&events),
        [vec!["192.0.2.1".parse::<IpAddr>().unwrap()]]
    );
    let ClusterEvent::Upsert(ClusterObject::Service(svc)) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(service::status_pool(svc), Some("main"));

    // Same length, new address: still seen.
    write_status(&d.status, "192.0.2.2");
    assert_eq!(
        upserted_ips(&src.scan()),
        [vec!["192.0.2.2".parse::<IpAddr>().unwrap()]]
    );
    // The controller cleared the status.
    std::fs::remove_file(status_path(&d.status, &ServiceKey::new("default", "web"))).unwrap();
    assert_eq!(upserted_ips(&src.scan()), [Vec::<IpAddr>::new()]);
    // A broken status file is ignored (warned about), not fatal.
    let path = status_path(&d.status, &ServiceKey::new("default", "web"));
    std::fs::write(&path, "status: [not, a, service").unwrap();
    assert!(src.scan().is_empty());
}

#[test]
fn a_followed_service_is_held_once_and_keeps_its_status_across_manifest_edits() {
    let d = dirs();
    write_status(&d.status, "192.0.2.1");
    let mut src = speaker_source(&d);
    let first = src.scan();
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(upserted_ips(&first), [vec![ip]]);
    let file = d.manifests.join("svc.yaml");
    let held_once = |src: &DirectorySource| {
        let cached = &src.manifests.peek(&file).unwrap().shared.objects[0];
        let (_, last) = src.last.of_kind(Kind::Service).next().unwrap();
        match (&**cached, last) {
            (ClusterObject::Service(a), ClusterObject::Service(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    };
    assert!(
        held_once(&src),
        "the cache and the scan share the Service with its status"
    );
    assert!(src.scan().is_empty(), "nothing changed");

    // The manifest changes: read again, the status still applies.
    let edited = SERVICE.replace("port: 80", "port: 81");
    std::fs::write(&file, format!("{edited}---\n{SLICE}")).unwrap();
    let events = src.scan();
    assert_eq!(upserted_ips(&events), [vec![ip]]);
    assert!(held_once(&src));
}

#[test]
fn restore_mode_reads_status_only_when_the_manifest_changes() {
    let d = dirs();
    write_status(&d.status, "192.0.2.1");
    let mut src = DirectorySource::new(
        d.manifests.clone(),
        Subscription::new([Kind::Service]),
        StatusDir::Restore(d.status.clone()),
    );
    let first = src.scan();
    assert_eq!(
        upserted_ips(&first),
        [vec!["192.0.2.1".parse::<IpAddr>().unwrap()]]
    );
    assert!(
        !first
            .iter()
            .any(|e| matches!(e, ClusterEvent::Upsert(ClusterObject::EndpointSlice(_)))),
        "not subscribed"
    );
    // The controller's own writes are not news to it.
    write_status(&d.status, "192.0.2.9");
    assert!(src.scan().is_empty());
    std::fs::remove_file(d.manifests.join("svc.yaml")).unwrap();
    assert_eq!(
        src.scan(),
        [ClusterEvent::Delete(
            Kind::Service,
            ObjectKey::new("default", "web")
        )]
    );
}

#[tokio::test]
async fn run_sends_synced_then_follows_a_status_dir_created_later() {
    let d = dirs();
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(speaker_source(&d).run(tx));
    let mut initial = Vec::new();
    while initial.last() != Some(&ClusterEvent::Synced) {
        initial.push(rx.recv().await.unwrap());
    }
    assert_eq!(upserted_ips(&initial), [Vec::<IpAddr>::new()]);
    // The status directory appears only now (the controller started after the speaker).
    // Well under the 2 s rescan: it is the inotify watch on the parent that notices.
    let started = std::time::Instant::now();
    write_status(&d.status, "192.0.2.1");
    let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a status change")
        .unwrap();
    assert_eq!(
        upserted_ips(&[event]),
        [vec!["192.0.2.1".parse::<IpAddr>().unwrap()]]
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // And then changes inside it.
    write_status(&d.status, "192.0.2.3");
    let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        upserted_ips(&[event]),
        [vec!["192.0.2.3".parse::<IpAddr>().unwrap()]]
    );
    drop(rx);
    task.abort();
}

#[tokio::test]
async fn a_missing_directory_is_an_error() {
    let src = DirectorySource::new(
        PathBuf::from("/nonexistent/ferrolb"),
        Subscription::default(),
        StatusDir::None,
    );
    let (tx, _rx) = mpsc::channel(1);
    let err = src.run(tx).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ferrolb"), "{err}");
}

/// Reading the watched directory (as every scan does) must not wake a scan: notify reports
/// opens and read-only closes too, and waking on them made the scans a busy loop.
#[test]
fn reading_the_directory_does_not_wake_a_scan_but_writing_does() {
    let d = dirs();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        let _ = tx.send(may_change(&e));
    })
    .unwrap();
    watcher
        .watch(&d.manifests, RecursiveMode::Recursive)
        .unwrap();
    let mut src = speaker_source(&d);
    src.scan();
    std::fs::read_to_string(d.manifests.join("svc.yaml")).unwrap();
    src.scan();
    let quiet = Duration::from_millis(200);
    let mut seen = 0;
    while let Ok(wakes) = rx.recv_timeout(quiet) {
        assert!(!wakes, "a read woke a scan");
        seen += 1;
    }
    assert!(
        seen > 0,
        "notify reported no access at all: the test proves nothing"
    );
    std::fs::write(d.manifests.join("more.yaml"), SERVICE).unwrap();
    let woke = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(5)).ok()).any(|w| w);
    assert!(woke, "a write did not wake a scan");
}

/// A rescan that finds every file as it was stops early; each kind of change still gets
/// through it.
#[test]
fn rescans_see_every_change_and_nothing_else() {
    let d = dirs();
    let mut src = speaker_source(&d);
    assert!(!src.scan().is_empty());
    assert!(src.scan().is_empty());
    let names = |events: &[ClusterEvent]| -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                ClusterEvent::Upsert(o) => format!("upsert {}", o.key()),
                ClusterEvent::Delete(_, k) => format!("delete {k}"),
                other => format!("{other:?}"),
            })
            .collect()
    };
    // A new file.
    let other = SERVICE.replace("name: web", "name: api");
    std::fs::write(d.manifests.join("api.yaml"), &other).unwrap();
    assert_eq!(names(&src.scan()), ["upsert default/api"]);
    assert!(src.scan().is_empty());
    // The same content written again (a new inode): read again, nothing to say.
    let tmp = d.manifests.join(".api.tmp");
    std::fs::write(&tmp, &other).unwrap();
    std::fs::rename(&tmp, d.manifests.join("api.yaml")).unwrap();
    assert!(src.scan().is_empty());
    // A status file for it, then the file gone.
    let status = status_path(&d.status, &ServiceKey::new("default", "api"));
    std::fs::create_dir_all(status.parent().unwrap()).unwrap();
    std::fs::write(
        &status,
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\nstatus: {loadBalancer: {ingress: [{ip: 192.0.2.7}]}}\n",
    )
    .unwrap();
    assert_eq!(
        upserted_ips(&src.scan()),
        [vec!["192.0.2.7".parse::<IpAddr>().unwrap()]]
    );
    assert!(src.scan().is_empty());
    std::fs::remove_file(d.manifests.join("api.yaml")).unwrap();
    assert_eq!(names(&src.scan()), ["delete default/api"]);
    assert!(src.scan().is_empty());
}
