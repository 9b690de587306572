//! Before anything runs: root, the tools, and the workspace binaries the labs start
//! ([`ferrolb_e2e::bench::preflight`]).

/// Tools the benchmark runs, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("arping", "arping"),
    ("tcpdump", "tcpdump"),
    ("keepalived", "keepalived"),
    ("getconf", "libc-bin"),
];

/// Fail unless everything the benchmark needs is there; build the binaries first.
pub fn preflight() -> anyhow::Result<()> {
    ferrolb_e2e::bench::preflight("failover", TOOLS, "FERROLB_FAILOVER_NO_BUILD")
}
