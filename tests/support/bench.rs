//! What the lab benchmarks (`tests/benches/*`) share: the machine they ran on, and the guard
//! that keeps their in-namespace scenarios from ever running anywhere but in a lab.

use crate::lab::LAB_PREFIX;

/// Refuse to touch the network unless this process runs in a lab's network namespace (one
/// named `flb...` in /run/netns): a scenario started by hand anywhere else, the root namespace
/// above all, would send probes on, or program, the machine's real network.
pub fn require_lab_netns() -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let own = id("/proc/self/ns/net".as_ref()).ok_or("cannot read /proc/self/ns/net")?;
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| id(&e.path()) == Some(own))
        .map(|e| e.file_name().to_string_lossy().into_owned());
    match named {
        Some(n) if n.starts_with(LAB_PREFIX) => Ok(()),
        other => Err(format!(
            "refusing to run a benchmark scenario outside a lab namespace (this one: {other:?}); the benchmark starts it inside a lab host"
        )),
    }
}

/// Cores, CPU, kernel, memory, load, and the versions of `tools` (each an argv printing the
/// version, on stdout or stderr).
pub fn machine(tools: &[&[&str]]) -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim())
        })
        .unwrap_or("unknown CPU");
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let versions: Vec<String> = tools.iter().map(|argv| version(argv)).collect();
    format!(
        "machine: nproc {cores}, {cpu}, {} GiB, Linux {}, load average {}\ntools: {}",
        mem_kib / (1 << 20),
        read("/proc/sys/kernel/osrelease").trim(),
        load_average(),
        versions.join("; ")
    )
}

/// The first non-empty line a tool prints (stdout, then stderr) for `argv`.
fn version(argv: &[&str]) -> String {
    let program =
        crate::lab::cmd::which(argv[0]).unwrap_or_else(|| std::path::PathBuf::from(argv[0]));
    std::process::Command::new(program)
        .args(&argv[1..])
        .output()
        .ok()
        .and_then(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text.lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| format!("{} not found", argv[0]))
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Seconds since the benchmark started (its first call), for stamping progress lines.
pub fn elapsed() -> f64 {
    STARTED
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

/// Binaries of this workspace the lab benchmarks run.
const BINARIES: &[&str] = &["ferrolb-speaker", "ferrolb-controller", "ferrolb-lab-echo"];

/// How long building the binaries may take (a cold release build of the speaker on two cores
/// takes a few minutes).
const BUILD_LIMIT: std::time::Duration = std::time::Duration::from_secs(1800);

/// Before anything runs: root, `tools` (each with its Debian package), and the workspace
/// binaries the labs start, built here in the profile of the bench target `bench` so the
/// speaker measured is the one in the tree; unless `FERROLB_BIN_DIR` or the variable
/// `no_build` is set.
pub fn preflight(bench: &str, tools: &[(&str, &str)], no_build: &str) -> anyhow::Result<()> {
    crate::lab::cmd::require_root()?;
    for (tool, package) in tools {
        crate::lab::cmd::require_tool(tool, package)?;
    }
    if std::env::var_os("FERROLB_BIN_DIR").is_none() && std::env::var_os(no_build).is_none() {
        build_binaries(bench)?;
    }
    for name in BINARIES {
        crate::lab::binary(name)?;
    }
    Ok(())
}

fn build_binaries(bench: &str) -> anyhow::Result<()> {
    use crate::lab::cmd;
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(String::from))
        .unwrap_or_else(|| "cargo".into());
    let dir = crate::lab::bin_dir();
    let profile = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = crate::workspace_root().join("Cargo.toml");
    // The bench's own profile and its own feature resolution (the bench target is named, so
    // dev-dependencies count as they did for `cargo bench`): the libraries it just built are
    // reused and only the binaries are compiled and linked.
    let mut c = std::process::Command::new(&cargo);
    c.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", "ferrolb-speaker", "-p", "ferrolb-controller", "-p"])
        .args(["ferrolb-e2e", "--bins", "--bench", bench, "--profile"])
        .arg(match profile.as_str() {
            // target/release holds the bench profile's output, target/debug the test profile's.
            "release" => "bench",
            "debug" => "test",
            other => other,
        });
    // Into the directory the bench runs from (`target/<profile>`), whatever CARGO_TARGET_DIR.
    if let Some(target) = dir.parent() {
        c.arg("--target-dir").arg(target);
    }
    // Not the variables cargo set for running this bench: build scripts that rerun when they
    // change (ring's does) would otherwise rebuild half the tree here and again at the next
    // `cargo bench`, minutes each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || matches!(&*name, "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR")
        {
            c.env_remove(&*name);
        }
    }
    eprintln!("{bench} bench [{:6.1} s]: {}", elapsed(), cmd::describe(&c));
    let out = cmd::output("the bench host (cargo build)", c, BUILD_LIMIT)?;
    anyhow::ensure!(
        out.status.success(),
        "building the binaries failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Numeric fields of `/proc/<pid>/status` (`VmRSS:`, `Threads:`, ...; the memory ones in KiB),
/// in the order asked.
pub fn proc_status<const N: usize>(pid: u32, names: [&str; N]) -> anyhow::Result<[u64; N]> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    let mut values = [0; N];
    for (value, name) in values.iter_mut().zip(names) {
        *value = status
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .ok_or_else(|| anyhow::anyhow!("no {name} in {path}"))?;
    }
    Ok(values)
}

/// The value of an unlabelled sample in a Prometheus metrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// A setting from the environment, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Median and worst (largest) of some measurements; `None` without any.
pub fn median_worst(v: &[f64]) -> Option<(f64, f64)> {
    let mut v = v.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[n - 1]))
}
