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
