//! The controller and the speaker together in standalone mode, both real processes on one
//! manifest directory: the speaker's snapshot holds the addresses the controller wrote to its
//! status directory, so the two agree on the status file format.

use ferrolb_e2e::bench::metric;
use ferrolb_e2e::{ChildGuard, binary, wait_for, workspace_root};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// GET `path` from the speaker's metrics address (127.0.0.1): the body of a 200 answer.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    assert!(addr.ip().is_loopback());
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

#[test]
fn the_speaker_sees_the_addresses_the_controller_assigns() {
    let tmp = tempfile::tempdir().unwrap();
    let manifests = tmp.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for f in ["pools.yaml", "services.yaml"] {
        std::fs::copy(workspace_root().join("examples").join(f), manifests.join(f)).unwrap();
    }
    // The speaker first: it must notice the status directory when the controller creates it.
    let mut speaker = Command::new(binary("ferrolb-speaker"))
        .args([
            "--node",
            "n1",
            "--dataplane",
            "none",
            // The root namespace: no ARP/NDP, and no BGP session with the example's BGPPeer.
            "--layer2",
            "false",
            "--bgp",
            "false",
            "--manifests",
        ])
        .arg(&manifests)
        .args(["--metrics-addr", "127.0.0.1:0", "--log", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = speaker.stdout.take().unwrap();
    let _speaker = ChildGuard(speaker);
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    let addr: SocketAddr = wait_for("the speaker's metrics address", LIMIT, || {
        log.lock().unwrap().iter().find_map(|l| {
            let rest = l.split("listening on http://").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
    });
    let before = wait_for("the speaker's first snapshot", LIMIT, || {
        get(addr, "/metrics")
            .filter(|m| metric(m, "ferrolb_speaker_snapshot_generation") >= Some(1.0))
    });
    assert_eq!(
        metric(&before, "ferrolb_speaker_snapshot_services"),
        Some(6.0)
    );
    assert_eq!(
        metric(&before, "ferrolb_speaker_snapshot_loadbalancer_ips"),
        Some(0.0)
    );

    let _controller = ChildGuard(
        Command::new(binary("ferrolb-controller"))
            .arg("--manifests")
            .arg(&manifests)
            .args(["--metrics-addr", "127.0.0.1:0", "--log", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // Six Services; web is dual-stack: seven addresses.
    wait_for(
        "the controller's seven addresses in the speaker's view",
        LIMIT,
        || {
            let m = get(addr, "/metrics")?;
            (metric(&m, "ferrolb_speaker_snapshot_loadbalancer_ips") == Some(7.0)).then_some(())
        },
    );
    // The log line is read from a pipe by another thread: it may land after the metric.
    wait_for("the speaker's log of the seven addresses", LIMIT, || {
        let log = log.lock().unwrap();
        log.iter()
            .any(|l| l.contains("snapshot: 6 services (6 with 7 LoadBalancer IPs)"))
            .then_some(())
    });
}
