//! The human view of a [`Report`]: one aligned table per section, errors under the
//! configuration table, `-` for nothing.

use super::Report;
use std::fmt::Write as _;

/// Columns padded to their widest cell, two spaces apart.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = w - cell.chars().count() + 2;
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".into() } else { s }
}

/// `3h4m5s` style, the largest two units.
pub fn uptime(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::from("CONFIGURATION\n");
    let rows = report
        .configuration
        .iter()
        .map(|c| {
            vec![
                c.component.clone(),
                or_dash(c.node.clone()),
                c.result.clone(),
                c.summary.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&["COMPONENT", "NODE", "RESULT", "SUMMARY"], rows));
    for c in report.configuration.iter().filter(|c| !c.is_valid()) {
        let who = if c.node.is_empty() {
            c.component.clone()
        } else {
            format!("{} {}", c.component, c.node)
        };
        for e in &c.errors {
            let _ = writeln!(out, "  {who}: {e}");
        }
    }
    out.push_str("\nPOOLS\n");
    let family = |used: u128, cap: u128| {
        if cap == 0 {
            "-".to_string()
        } else {
            format!("{used}/{cap}")
        }
    };
    let rows = report
        .pools
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                family(p.in_use_v4, p.capacity_v4),
                family(p.in_use_v6, p.capacity_v6),
            ]
        })
        .collect();
    out.push_str(&table(
        &["POOL", "IPV4 USED/TOTAL", "IPV6 USED/TOTAL"],
        rows,
    ));
    out.push_str("\nSERVICES\n");
    let rows = report
        .services
        .iter()
        .map(|s| {
            // The node alone when it holds every address; per address otherwise.
            let l2 = match s.layer2_nodes.as_slice() {
                [one] if one.addresses.len() == s.addresses.len() => one.node.clone(),
                nodes => nodes
                    .iter()
                    .map(|n| format!("{} ({})", n.node, n.addresses.join(",")))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let bgp = s
                .bgp
                .iter()
                .map(|b| format!("{}: {}", b.node, b.peers.join(",")))
                .collect::<Vec<_>>()
                .join("; ");
            vec![
                format!("{}/{}", s.namespace, s.name),
                or_dash(s.addresses.join(",")),
                or_dash(s.pool.clone()),
                or_dash(l2),
                or_dash(bgp),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "SERVICE",
            "ADDRESSES",
            "POOL",
            "LAYER 2 NODE",
            "BGP (NODE: PEERS)",
        ],
        rows,
    ));
    out.push_str("\nBGP SESSIONS\n");
    let rows = report
        .bgp_sessions
        .iter()
        .map(|s| {
            vec![
                s.state.node.clone(),
                s.state.peer.clone(),
                s.state.peer_address.clone(),
                s.state.bgp_status.clone(),
                s.uptime_seconds.map(uptime).unwrap_or_else(|| "-".into()),
                or_dash(s.state.bfd_status.clone()),
                or_dash(s.state.last_error.clone()),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "NODE",
            "PEER",
            "ADDRESS",
            "STATE",
            "UPTIME",
            "BFD",
            "LAST ERROR",
        ],
        rows,
    ));
    out
}
