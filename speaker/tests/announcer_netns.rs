//! The layer 2 announcer against real tools, in two network namespaces made by this test.
//!
//! ```text
//!   flbann<pid>-a                          flbann<pid>-b
//!   veth-a 02:f1:b0:00:00:0a  ─────────── veth-b 02:f1:b0:00:00:0b
//!   10.99.0.1/24 fd99::1/64               10.99.0.2/24 fd99::2/64
//!   Announcer (owns .200, ::200)          arping, ndisc6, tcpdump
//! ```
//!
//! The announcer is created by a thread that entered namespace A with `setns` (rustix, a
//! dev-dependency), so its control thread and every socket live there. Nothing touches the
//! root namespace's interfaces; both namespaces are deleted when the test ends, also on panic,
//! and leftovers of earlier runs (their process gone) are swept first.
//!
//! Needs root and the Debian packages iproute2, arping (Habets'), ndisc6 and tcpdump
//! (tests/install-deps.sh); it fails, never skips, without them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrolb_shared::l2::election::Interfaces;
use ferrolb_speaker::layer2::announcer::{Announcer, AnnouncerConfig};
use ferrolb_speaker::layer2::interfaces::{CarrierMap, CarrierWatcher};
use tokio::sync::watch;

const PREFIX: &str = "flbann";
const MAC_A: &str = "02:f1:b0:00:00:0a";
const MAC_B: &str = "02:f1:b0:00:00:0b";
const V4: &str = "10.99.0.200";
const V6: &str = "fd99::200";
/// An address owned on an interface that does not exist: never answered on veth-a.
const ELSEWHERE: &str = "10.99.0.201";

/// Deletes the namespaces when dropped, whatever happened.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A background process killed when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_environment() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("effective uid");
    assert_eq!(
        uid, "0",
        "announcer_netns needs root (network namespaces, raw sockets)"
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path.split(':').chain(["/usr/sbin", "/sbin"]).collect();
    for tool in ["ip", "ss", "arping", "ndisc6", "tcpdump"] {
        assert!(
            dirs.iter()
                .any(|d| std::path::Path::new(d).join(tool).is_file()),
            "`{tool}` is missing: install iproute2, arping, ndisc6 and tcpdump \
             (tests/install-deps.sh)"
        );
    }
}

/// Runs a command to completion within `limit`, killing it after that.
fn run_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ip <args>`, which must succeed.
fn ip(args: &[&str]) -> String {
    let mut command = Command::new("ip");
    command.args(args);
    let out = run_within(command, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).args(args);
    command
}

/// Deletes namespaces of earlier runs whose process is gone (only ours: the prefix).
fn sweep_leftovers() {
    for line in ip(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn setup(a: &str, b: &str) {
    ip(&["netns", "add", a]);
    ip(&["netns", "add", b]);
    ip(&[
        "-n", a, "link", "add", "veth-a", "address", MAC_A, "type", "veth", "peer", "name",
        "veth-b", "address", MAC_B, "netns", b,
    ]);
    for (ns, dev, v4, v6) in [
        (a, "veth-a", "10.99.0.1/24", "fd99::1/64"),
        (b, "veth-b", "10.99.0.2/24", "fd99::2/64"),
    ] {
        ip(&["-n", ns, "addr", "add", v4, "dev", dev]);
        ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
}

/// The carrier watcher's resync period in these tests: longer than any of them.
const NO_RESYNC: Duration = Duration::from_secs(3600);

/// Creates the announcer and the carrier watcher from a thread inside namespace `ns`.
fn start_in_namespace(ns: &str) -> (Announcer, CarrierWatcher, watch::Receiver<CarrierMap>) {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the test namespace");
        let announcer = Announcer::new(AnnouncerConfig {
            gratuitous_repeats: 3,
            gratuitous_interval: Duration::from_millis(200),
            refresh: None,
            reply_rate_per_source: 50,
        });
        // No periodic dump within any test: every change it reports came by notification.
        let (watcher, carrier) = CarrierWatcher::spawn(NO_RESYNC).expect("carrier watcher");
        (announcer, watcher, carrier)
    })
    .join()
    .expect("namespace thread")
}

/// tcpdump on veth-b, its lines delivered with their arrival time.
fn start_capture(b: &str) -> (Background, mpsc::Receiver<(Instant, String)>) {
    let mut command = in_ns(
        b,
        &[
            "tcpdump",
            "-i",
            "veth-b",
            "-n",
            "-e",
            "-l",
            "-U",
            "arp or icmp6",
        ],
    );
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpdump");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let guard = Background(child);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("tcpdump did not start listening within 10 s");
    (guard, lines)
}

/// Collects captured lines matching `wanted` until `count` arrived or `limit` passed.
fn captured(
    lines: &mpsc::Receiver<(Instant, String)>,
    wanted: impl Fn(&str) -> bool,
    count: usize,
    limit: Duration,
) -> Vec<(Instant, String)> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((at, line)) if wanted(&line) => out.push((at, line)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

/// The capture time tcpdump prints first (`HH:MM:SS.ffffff`), in seconds of the day.
fn capture_time(line: &str) -> f64 {
    let stamp = line.split_whitespace().next().unwrap_or_default();
    let parts: Vec<f64> = stamp.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, m, s] = parts[..] else {
        panic!("no timestamp in tcpdump line {line:?}");
    };
    h * 3600.0 + m * 60.0 + s
}

fn from_a(line: &str) -> bool {
    line.contains(&format!("{MAC_A} > "))
}

fn garp_request(line: &str) -> bool {
    from_a(line) && line.contains(&format!("who-has {V4}")) && line.contains(&format!("tell {V4}"))
}

fn unsolicited_na(line: &str) -> bool {
    from_a(line) && line.contains(&format!("neighbor advertisement, tgt is {V6}"))
}

/// One ARP request from B; the reply's MAC if one came.
fn arping(b: &str, target: &str) -> Option<String> {
    let out = run_within(
        in_ns(b, &["arping", "-c", "1", "-w", "2", "-i", "veth-b", target]),
        Duration::from_secs(5),
    );
    let stdout = text(&out.stdout);
    let reply = stdout
        .lines()
        .find(|l| l.contains("bytes from"))
        .and_then(|l| l.split_whitespace().nth(3))
        .map(str::to_lowercase);
    assert_eq!(
        out.status.success(),
        reply.is_some(),
        "arping exit status and output disagree: {stdout} {}",
        text(&out.stderr)
    );
    reply
}

/// One neighbor solicitation round from B (up to 2 tries); the answer's MAC if one came.
fn ndisc6(b: &str, target: &str) -> Option<String> {
    let out = run_within(
        in_ns(
            b,
            &[
                "ndisc6", "-1", "-q", "-r", "2", "-w", "700", target, "veth-b",
            ],
        ),
        Duration::from_secs(5),
    );
    let stdout = text(&out.stdout);
    out.status
        .success()
        .then(|| stdout.trim().to_lowercase())
        .filter(|mac| !mac.is_empty())
}

fn wait_carrier(carrier: &mut watch::Receiver<CarrierMap>, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while carrier.borrow_and_update().get("veth-a") != Some(&up) {
        assert!(
            Instant::now() < deadline,
            "the carrier watcher did not report veth-a {} within 3 s: {:?}",
            if up { "up" } else { "down" },
            *carrier.borrow()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn solicited_node_group_joined(a: &str) -> bool {
    ip(&["-n", a, "-6", "maddr", "show", "dev", "veth-a"]).contains("ff02::1:ff00:200")
}

#[test]
fn announcer_answers_arp_and_ndp_in_a_namespace() {
    require_environment();
    sweep_leftovers();
    let pid = std::process::id();
    let (a, b) = (format!("{PREFIX}{pid}-a"), format!("{PREFIX}{pid}-b"));
    let _namespaces = Namespaces(vec![a.clone(), b.clone()]);
    setup(&a, &b);

    let (announcer, watcher, mut carrier) = start_in_namespace(&a);
    wait_carrier(&mut carrier, true);
    let v4: IpAddr = V4.parse().unwrap();
    let v6: IpAddr = V6.parse().unwrap();
    let elsewhere: IpAddr = ELSEWHERE.parse().unwrap();
    let veth_a = Interfaces::Named(BTreeSet::from(["veth-a".to_string()]));
    let missing = Interfaces::Named(BTreeSet::from(["flb-missing0".to_string()]));

    // Takeover: announced at once, then repeated.
    let (_tcpdump, lines) = start_capture(&b);
    let owned_at = Instant::now();
    announcer.set_owned(BTreeMap::from([
        (v4, veth_a.clone()),
        (v6, Interfaces::All),
        (elsewhere, missing),
    ]));
    assert_eq!(
        announcer.answering(),
        BTreeMap::from([
            (v4, BTreeSet::from(["veth-a".to_string()])),
            (v6, BTreeSet::from(["veth-a".to_string()])),
        ])
    );
    let garps = captured(&lines, garp_request, 3, Duration::from_secs(3));
    assert_eq!(
        garps.len(),
        3,
        "expected 3 gratuitous ARP requests, saw {garps:?}"
    );
    // Generous bound: this is when tcpdump printed it, on a possibly busy machine.
    assert!(
        garps[0].0.duration_since(owned_at) < Duration::from_secs(1),
        "the first gratuitous ARP came late"
    );
    // tcpdump's capture timestamps: 2 intervals of 200 ms between the first and the third.
    let spread = capture_time(&garps[2].1) - capture_time(&garps[0].1);
    assert!(
        (0.35..1.5).contains(&spread),
        "repeats not spaced by the interval: {spread} s"
    );
    let nas = captured(&lines, unsolicited_na, 1, Duration::from_secs(2));
    assert_eq!(nas.len(), 1, "no unsolicited neighbor advertisement seen");
    assert!(
        solicited_node_group_joined(&a),
        "solicited-node group not joined"
    );
    // Exactly one packet socket, on veth-a, with the 13-instruction ARP/NS filter attached.
    let ss = text(&run_within(in_ns(&a, &["ss", "-0", "-b", "-a"]), Duration::from_secs(5)).stdout);
    assert_eq!(ss.matches("p_raw").count(), 1, "packet sockets in A: {ss}");
    assert!(
        ss.contains("*:veth-a") && ss.contains("bpf filter (13)"),
        "no filtered packet socket on veth-a: {ss}"
    );

    // Questions get answers with A's MAC, from B's real tools.
    assert_eq!(arping(&b, V4).as_deref(), Some(MAC_A));
    assert_eq!(ndisc6(&b, V6).as_deref(), Some(MAC_A));
    // Owned, but not on this interface: no answer.
    assert_eq!(arping(&b, ELSEWHERE), None);

    let counters: BTreeMap<IpAddr, _> = announcer
        .counters()
        .into_iter()
        .map(|c| (c.ip, c))
        .collect();
    assert!(counters[&v4].requests >= 1 && counters[&v4].replies >= 1);
    assert_eq!(
        counters[&v4].gratuitous, 6,
        "3 announcements x (request + reply form)"
    );
    assert!(counters[&v6].replies >= 1);
    assert_eq!(counters[&v6].gratuitous, 3);
    assert_eq!(counters[&elsewhere].requests, 0);
    assert_eq!(announcer.global_counters().malformed, 0);

    // Fencing: no answer without carrier; a fresh announcement when it returns.
    announcer.set_carrier("veth-a", false);
    assert!(announcer.answering().is_empty());
    assert_eq!(arping(&b, V4), None);
    while lines.try_recv().is_ok() {}
    announcer.set_carrier("veth-a", true);
    let again = captured(&lines, garp_request, 1, Duration::from_secs(2));
    assert_eq!(again.len(), 1, "no gratuitous ARP after carrier returned");
    assert_eq!(arping(&b, V4).as_deref(), Some(MAC_A));

    // The carrier watcher sees the real link state of A's interface, told by the kernel (it
    // never dumps on its own within this test).
    ip(&["-n", &b, "link", "set", "veth-b", "down"]);
    wait_carrier(&mut carrier, false);
    ip(&["-n", &b, "link", "set", "veth-b", "up"]);
    wait_carrier(&mut carrier, true);

    // Release: no answers any more, the group is left.
    announcer.set_owned(BTreeMap::new());
    assert!(announcer.answering().is_empty());
    assert_eq!(arping(&b, V4), None);
    assert_eq!(ndisc6(&b, V6), None);
    assert!(
        !solicited_node_group_joined(&a),
        "solicited-node group still joined"
    );

    let started = Instant::now();
    announcer.shutdown();
    watcher.stop();
    assert!(started.elapsed() < Duration::from_secs(2), "slow shutdown");
}
