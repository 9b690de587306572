//! Before anything runs: root, the tools, and the workspace binaries the lab starts (built
//! here in the bench's own profile, so the speaker measured is the one in the tree).

use ferrolb_e2e::lab::{bin_dir, binary, cmd};
use std::process::Command;
use std::time::Duration;

/// Tools the benchmark runs, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("bird", "bird2"),
    ("birdc", "bird2"),
    ("gobgpd", "gobgpd"),
    ("gobgp", "gobgpd"),
];

/// Binaries of this workspace the lab runs.
const BINARIES: &[&str] = &["ferrolb-speaker", "ferrolb-controller", "ferrolb-lab-echo"];

/// How long building the binaries may take (a cold release build of the speaker on two cores
/// takes a few minutes).
const BUILD_LIMIT: Duration = Duration::from_secs(1800);

/// Fail unless everything the benchmark needs is there; build the binaries first.
pub fn preflight() -> anyhow::Result<()> {
    cmd::require_root()?;
    for (tool, package) in TOOLS {
        cmd::require_tool(tool, package)?;
    }
    build_binaries()?;
    for name in BINARIES {
        binary(name)?;
    }
    Ok(())
}

fn build_binaries() -> anyhow::Result<()> {
    if std::env::var_os("FERROLB_BIN_DIR").is_some()
        || std::env::var_os("FERROLB_BGP_NO_BUILD").is_some()
    {
        return Ok(());
    }
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(String::from))
        .unwrap_or_else(|| "cargo".into());
    let dir = bin_dir();
    let profile = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = ferrolb_e2e::workspace_root().join("Cargo.toml");
    // The bench's own profile and its own feature resolution (the bench target is named, so
    // dev-dependencies count as they did for `cargo bench`): the libraries it just built are
    // reused and only the two binaries are compiled and linked.
    let mut c = Command::new(&cargo);
    c.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", "ferrolb-speaker", "-p", "ferrolb-controller", "-p"])
        .args(["ferrolb-e2e", "--bins", "--bench", "bgp", "--profile"])
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
    note!("{}", cmd::describe(&c));
    let out = cmd::output("the bench host (cargo build)", c, BUILD_LIMIT)?;
    anyhow::ensure!(
        out.status.success(),
        "building the binaries failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
