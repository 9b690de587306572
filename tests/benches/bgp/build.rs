//! Before anything runs: root, the tools, and the workspace binaries the lab starts
//! ([`ferrolb_e2e::bench::preflight`]).

/// Tools the benchmark runs, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("bird", "bird2"),
    ("birdc", "bird2"),
    ("gobgpd", "gobgpd"),
    ("gobgp", "gobgpd"),
];

/// Fail unless everything the benchmark needs is there; build the binaries first.
pub fn preflight() -> anyhow::Result<()> {
    ferrolb_e2e::bench::preflight("bgp", TOOLS, "FERROLB_BGP_NO_BUILD")
}
