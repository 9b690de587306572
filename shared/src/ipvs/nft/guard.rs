//! The userspace proxy's port guard: a table of its own, `inet ferrolb-proxy-guard`, whose
//! input chain lets a packet reach the proxy's port range only if conntrack says its
//! destination was rewritten (the redirect of a virtual server) or if it answers a connection
//! the node opened itself. Everything else for those ports is dropped, untracked packets too
//! (they match neither accept rule).
//!
//! Without it a listener answers anyone who reaches the node's address at its port directly:
//! a ClusterIP-only Service would be reachable from outside the cluster, and
//! `externalTrafficPolicy: Local` would be bypassed. The alternatives, and why not:
//! - listeners bound to loopback: a redirect in prerouting rewrites the destination to the
//!   receiving interface's address, and DNAT to 127.0.0.1 from outside needs `route_localnet`
//!   (the hole of CVE-2020-8558); IPv6 cannot reach ::1 from outside at all;
//! - transparent proxying (TPROXY): needs policy routing on the node (a fwmark rule and a
//!   local route table) besides FerroLB's own table, and a listener per virtual address;
//! - a rule per listener's port in the main tables: a window between a listener opening and
//!   its rule, and elements to add and forget per listener in two families.
//!
//! The guard closes the whole range before the first listener opens, stays the same for the
//! speaker's life, and one `inet` chain covers both families (a dual-stack listener takes
//! IPv4 and IPv6 alike). The range is FerroLB's: a port in it is only ever the proxy's.

use std::fmt::Write;
use std::ops::RangeInclusive;

/// The guard's table (family `inet`).
pub const TABLE: &str = "ferrolb-proxy-guard";

/// A script that creates (or replaces, in one transaction) the guard for `ports`.
pub fn render(ports: &RangeInclusive<u16>) -> String {
    let (first, last) = (ports.start(), ports.end());
    let matching = format!("meta l4proto {{ tcp, udp }} th dport {first}-{last}");
    let mut s = String::new();
    // `add` then `delete` makes the delete succeed whether or not the table existed.
    let _ = writeln!(
        s,
        "add table inet {TABLE}\ndelete table inet {TABLE}\nadd table inet {TABLE}"
    );
    let _ = writeln!(
        s,
        "add chain inet {TABLE} input {{ type filter hook input priority filter; policy accept; }}"
    );
    for verdict in [
        "ct status dnat accept",
        "ct direction reply accept",
        "counter drop",
    ] {
        let _ = writeln!(s, "add rule inet {TABLE} input {matching} {verdict}");
    }
    s
}

/// A script that removes the guard, whether or not it exists.
pub fn render_removal() -> String {
    format!("add table inet {TABLE}\ndelete table inet {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_takes_redirects_and_answers_only() {
        let s = render(&(20000..=29999));
        let rules: Vec<&str> = s.lines().filter(|l| l.starts_with("add rule")).collect();
        assert_eq!(
            rules,
            [
                "add rule inet ferrolb-proxy-guard input meta l4proto { tcp, udp } th dport 20000-29999 ct status dnat accept",
                "add rule inet ferrolb-proxy-guard input meta l4proto { tcp, udp } th dport 20000-29999 ct direction reply accept",
                "add rule inet ferrolb-proxy-guard input meta l4proto { tcp, udp } th dport 20000-29999 counter drop",
            ]
        );
        assert!(
            s.starts_with(
                "add table inet ferrolb-proxy-guard\ndelete table inet ferrolb-proxy-guard\n"
            ),
            "replaces a stale guard in the same transaction: {s}"
        );
        assert!(s.contains("type filter hook input priority filter; policy accept;"));
    }
}
