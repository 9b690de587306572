//! Controller benchmarks: `cargo bench -p ferrolb-controller --bench controller`.
//!
//! Prints, for this machine:
//! - allocating 100,000 Services across 4, 10 and 1,000 pools, and 1,000,000 across 4: total,
//!   per allocation, and the
//!   peak memory the allocator state added, next to a naive linear-scan allocator (the way a
//!   pool is walked address by address) as the baseline;
//! - the same 100,000 Services through the whole reconcile core (Service objects in, status
//!   actions out);
//! - re-syncing 100,000 existing assignments after a restart (every address must be kept);
//! - standalone mode: time from a Service file appearing in the manifest directory to its
//!   status file being written, by the real binary.
//!
//! Each scenario runs in a fresh child process so that peak memory (VmHWM) is its own.

use ferrolb_shared::alloc::{
    Allocator, BackendKey, FamilyPolicy, IpRange, PoolDef, Protocol, ServiceKey, ServiceRequest,
};
use ferrolb_shared::reconcile::{Action, Input, Reconciler};
use ferrolb_shared::service::{Service, apply_status};
use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

const SERVICES: usize = 100_000;

// The same allocator as the controller binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Ok(scenario) = std::env::var("FERROLB_BENCH_SCENARIO") {
        run_scenario(&scenario);
        return;
    }
    println!(
        "FerroLB controller benchmark ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!(
        "{:<58} {:>10} {:>12} {:>10}",
        "scenario", "total", "per item", "peak mem"
    );
    for scenario in [
        "alloc:4",
        "alloc1m:4",
        "alloc:10",
        "alloc:1000",
        "naive:4",
        "reconcile:4",
        "resync:4",
        "standalone",
    ] {
        let out = Command::new(std::env::current_exe().expect("own path"))
            .env("FERROLB_BENCH_SCENARIO", scenario)
            .output()
            .expect("run scenario");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("scenario {scenario} failed");
        }
    }
}

fn run_scenario(scenario: &str) {
    let (name, arg) = scenario.split_once(':').unwrap_or((scenario, "4"));
    let pools: usize = arg.parse().unwrap_or(4);
    match name {
        "alloc" => alloc(pools, SERVICES),
        "alloc1m" => alloc(pools, 1_000_000),
        "naive" => naive(pools),
        "reconcile" => reconcile(pools),
        "resync" => resync(pools),
        "standalone" => standalone(),
        other => panic!("unknown scenario {other}"),
    }
}

/// `count` IPv4 pools that together hold at least 2.5 × SERVICES addresses.
fn pool_defs(count: usize) -> Vec<PoolDef> {
    pool_defs_for(count, SERVICES)
}

/// `count` IPv4 pools that together hold at least 2.5 × `services` addresses.
fn pool_defs_for(count: usize, services: usize) -> Vec<PoolDef> {
    let per_pool = (services * 5 / 2).div_ceil(count) as u32;
    (0..count as u32)
        .map(|i| {
            let start = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i * per_pool;
            PoolDef {
                name: format!("pool-{i:04}"),
                ranges: vec![IpRange::new(
                    IpAddr::V4(start.into()),
                    IpAddr::V4((start + per_pool - 1).into()),
                )],
                auto_assign: true,
                avoid_buggy_ips: false,
                allocation: None,
            }
        })
        .collect()
}

fn request(i: usize) -> ServiceRequest {
    ServiceRequest {
        key: ServiceKey {
            namespace: format!("ns-{}", i % 100),
            name: format!("svc-{i}"),
        },
        family_policy: FamilyPolicy::SingleStack,
        backend_key: BackendKey::Cluster,
        ports: vec![(Protocol::Tcp, 80)],
        ..Default::default()
    }
}

/// Service `i` as a source delivers it (projected).
fn service(i: usize) -> Service {
    let mut s = k8s_openapi::api::core::v1::Service {
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.metadata.namespace = Some(format!("ns-{}", i % 100));
    s.metadata.name = Some(format!("svc-{i}"));
    s.into()
}

fn config_input(pools: &[PoolDef]) -> Input {
    use ferrolb_shared::config::{ConfigObject, IPAddressPool, IPAddressPoolSpec, Source};
    let objects = pools
        .iter()
        .map(|p| {
            let mut pool = IPAddressPool::new(
                &p.name,
                IPAddressPoolSpec {
                    addresses: p
                        .ranges
                        .iter()
                        .map(|r| format!("{}-{}", r.start, r.end))
                        .collect(),
                    ..Default::default()
                },
            );
            pool.status = None;
            (Source::api(), ConfigObject::IPAddressPool(pool))
        })
        .collect();
    Input::Config {
        objects,
        errors: vec![],
    }
}

fn report(label: &str, total: Duration, items: usize, base_rss_kib: u64) {
    let peak = peak_rss_kib().saturating_sub(base_rss_kib);
    println!(
        "{label:<58} {:>9.1}ms {:>10.0}ns {:>8.1}MiB",
        total.as_secs_f64() * 1e3,
        total.as_nanos() as f64 / items as f64,
        peak as f64 / 1024.0
    );
}

fn alloc(pools: usize, services: usize) {
    let defs = pool_defs_for(pools, services);
    let requests: Vec<ServiceRequest> = (0..services).map(request).collect();
    let base = current_rss_kib();
    let cpu_before = cpu_ticks();
    let started = Instant::now();
    let mut a = Allocator::new();
    a.set_pools(defs);
    for r in &requests {
        a.assign(r).expect("room for every service");
    }
    let total = started.elapsed();
    let (user, kernel) = cpu_ticks();
    report(
        &format!("allocate {services} Services, {pools} pools (allocator)"),
        total,
        services,
        base,
    );
    // The kernel's share is zeroing the pages the allocator touches first (on a VM, the host
    // backing them too), so it follows memory, and varies from run to run on a VM.
    println!(
        "  {} bytes per Service; CPU {} ms in user space, {} ms in the kernel",
        (peak_rss_kib().saturating_sub(base) * 1024) / services as u64,
        (user - cpu_before.0) * 10,
        (kernel - cpu_before.1) * 10
    );
}

/// This process's user and kernel CPU time so far, in clock ticks of 10 ms (`/proc/self/stat`).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    (
        fields.get(11).copied().unwrap_or(0),
        fields.get(12).copied().unwrap_or(0),
    )
}

/// The baseline: walk each pool from its first address until one is not in the used set.
fn naive(pools: usize) {
    let defs = pool_defs(pools);
    let n = SERVICES / 10;
    let base = current_rss_kib();
    let started = Instant::now();
    let mut used: HashSet<u32> = HashSet::new();
    for _ in 0..n {
        let mut found = false;
        'pools: for p in &defs {
            let (IpAddr::V4(s), IpAddr::V4(e)) = (p.ranges[0].start, p.ranges[0].end) else {
                unreachable!()
            };
            for ip in u32::from(s)..=u32::from(e) {
                if used.insert(ip) {
                    found = true;
                    break 'pools;
                }
            }
        }
        assert!(found);
    }
    let naive_total = started.elapsed();
    report(
        &format!("  baseline: naive linear scan, {n} Services, {pools} pools"),
        naive_total,
        n,
        base,
    );
    let started = Instant::now();
    let mut a = Allocator::new();
    a.set_pools(defs);
    for i in 0..n {
        a.assign(&request(i)).expect("room");
    }
    let ours = started.elapsed();
    println!(
        "  FerroLB at {n} Services: {:.1}ms, {:.0}x faster than the linear scan (gap grows with n)",
        ours.as_secs_f64() * 1e3,
        naive_total.as_secs_f64() / ours.as_secs_f64()
    );
}

fn count_status(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::SetStatus { .. }))
        .count()
}

fn reconcile(pools: usize) {
    let defs = pool_defs(pools);
    let services: Vec<Service> = (0..SERVICES).map(service).collect();
    let config = config_input(&defs);
    let base = current_rss_kib();
    let started = Instant::now();
    let mut r = Reconciler::new(None);
    r.handle(config);
    for s in services {
        r.handle(Input::ServiceUpsert(std::sync::Arc::new(s)));
    }
    let written = count_status(&r.handle(Input::Synced));
    let total = started.elapsed();
    assert_eq!(written, SERVICES);
    report(
        &format!("allocate {SERVICES} Services, {pools} pools (reconcile core)"),
        total,
        SERVICES,
        base,
    );
}

fn resync(pools: usize) {
    let defs = pool_defs(pools);
    // Allocate once to learn the addresses, then restart with those in the Services' status.
    let mut a = Allocator::new();
    a.set_pools(defs.clone());
    let services: Vec<Service> = (0..SERVICES)
        .map(|i| {
            let ips = a.assign(&request(i)).expect("room").ips;
            let mut s = service(i);
            apply_status(&mut s, &ips, Some("x"));
            s
        })
        .collect();
    // Reverse order, so that key order differs from address order and nothing lines up by luck.
    let expected: Vec<Vec<IpAddr>> = (0..SERVICES)
        .map(|i| a.assignment(&request(i).key).unwrap().ips.clone())
        .collect();
    drop(a);
    let config = config_input(&defs);
    let base = current_rss_kib();
    let started = Instant::now();
    let mut r = Reconciler::new(None);
    r.handle(config);
    for s in services.into_iter().rev() {
        r.handle(Input::ServiceUpsert(std::sync::Arc::new(s)));
    }
    r.handle(Input::Synced);
    let total = started.elapsed();
    let moved = (0..SERVICES)
        .filter(|&i| r.assignment(&request(i).key).map(|a| &a.ips) != Some(&expected[i]))
        .count();
    assert_eq!(moved, 0, "a restart moved {moved} addresses");
    report(
        &format!("re-sync {SERVICES} existing assignments after a restart"),
        total,
        SERVICES,
        base,
    );
}

fn standalone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("manifests");
    let status = tmp.path().join("manifests.status");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pool.yaml"),
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/16]}\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("--manifests")
        .arg(&dir)
        .args(["--metrics-addr", "127.0.0.1:0", "--log", "warn"])
        .spawn()
        .expect("start controller");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(status.join("config.yaml"))
        .unwrap_or_default()
        .contains("accepted: true")
    {
        assert!(Instant::now() < deadline, "controller did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut samples = Vec::new();
    for i in 0..30 {
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
        );
        let staged = tmp.path().join("staged.yaml");
        std::fs::write(&staged, text).unwrap();
        let target = status.join("services/default").join(format!("s{i}.yaml"));
        let started = Instant::now();
        std::fs::rename(&staged, dir.join(format!("s{i}.yaml"))).unwrap();
        while !target.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no status for s{i}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        samples.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<58} median {:.2}ms, p90 {:.2}ms, max {:.2}ms over {} Services",
        "standalone: new Service file -> status file written",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

fn proc_status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn current_rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}
