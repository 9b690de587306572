//! UDP conntrack entries that would keep sending a client's datagrams the wrong way.
//!
//! UDP has no connection to close: the kernel's conntrack entry of a flow decides where its
//! datagrams go until it times out, and every datagram renews it. NAT (the kernel path's
//! DNAT, the userspace path's redirect) is only decided for a flow's first datagram, so two
//! kinds of entries outlive the truth and must be deleted when the table changes:
//!
//! - a flow DNATed to a real server that has left (kernel path; the userspace proxy ends its
//!   own flows): its datagrams would go on reaching the departed endpoint;
//! - a flow that began before its virtual server was programmed (a new Service, or a speaker
//!   starting on a node that already tracks connections, as nodes with a CNI's rules do): it
//!   was never translated, so its datagrams would go on to wherever they went before (no
//!   socket, or the next hop) for as long as the client keeps sending. Such an entry is the
//!   one whose reply comes from the virtual server's own address and port. Entries that were
//!   translated, by this speaker or a crashed one before it, are left alone.

use ferrolb_shared::ipvs::model::{Change, Proto, Table, VsKey};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Stdio;
use tokio::process::Command;

/// After `table` was programmed over `programmed` (looking at `touched`, `None`: all):
/// deletes the UDP conntrack entries the change left stale ([`stale_udp`]) and brings the
/// copy of what is programmed up to date, at the cost of the change. `kernel`: as for
/// [`stale_udp`]. Both kernel paths (nftables, IPVS) and the proxy's redirects do this after
/// every successful program.
pub async fn after_program(
    programmed: &mut Option<Table>,
    table: &Table,
    kernel: bool,
    touched: Option<&BTreeSet<VsKey>>,
) {
    delete(&stale_udp(programmed.as_ref(), table, kernel, touched)).await;
    match (programmed.as_mut(), touched) {
        (Some(p), Some(keys)) => p.follow(table, keys),
        _ => *programmed = Some(table.clone()),
    }
}

/// One deletion: the UDP entries to `vip:port` that are ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stale {
    /// ... DNATed to `backend`, which left the virtual server.
    Backend {
        vip: IpAddr,
        port: u16,
        backend: IpAddr,
    },
    /// ... not translated at all (they began before the virtual server was programmed).
    Untranslated { vip: IpAddr, port: u16 },
}

/// What to delete after `new` replaced `old` (`None`: nothing was programmed before, as after
/// a start). `kernel`: the kernel path, which DNATs to real servers itself. `touched`: the
/// virtual servers that may differ (`None`: any of them), so a small change looks at little.
pub fn stale_udp(
    old: Option<&Table>,
    new: &Table,
    kernel: bool,
    touched: Option<&BTreeSet<VsKey>>,
) -> BTreeSet<Stale> {
    let mut stale = BTreeSet::new();
    let empty = Table::default();
    let old_table = old.unwrap_or(&empty);
    let changes = match touched {
        Some(keys) => old_table.diff_keys(new, keys),
        None => old_table.diff(new),
    };
    for change in &changes {
        let Change::Add(vs) = change else { continue };
        let serving = !vs.drop && !vs.real_servers.is_empty();
        if vs.key.proto == Proto::Udp && serving {
            stale.insert(Stale::Untranslated {
                vip: vs.key.addr,
                port: vs.key.port,
            });
        }
    }
    let Some(old) = old.filter(|_| kernel) else {
        return stale;
    };
    for change in changes {
        let key = match &change {
            Change::Update(v) => v.key,
            Change::Remove(k) => *k,
            Change::Add(_) => continue,
        };
        let (Some(before), true) = (old.servers.get(&key), key.proto == Proto::Udp) else {
            continue;
        };
        let after = new.servers.get(&key);
        for rs in &before.real_servers {
            let kept = after.is_some_and(|a| {
                a.real_servers
                    .iter()
                    .any(|r| r.addr == rs.addr && r.port == rs.port)
            });
            if !kept {
                stale.insert(Stale::Backend {
                    vip: key.addr,
                    port: key.port,
                    backend: rs.addr,
                });
            }
        }
    }
    stale
}

/// The `conntrack` arguments deleting one kind of stale entries.
pub fn args(stale: &Stale) -> Vec<String> {
    let (vip, port) = match stale {
        Stale::Backend { vip, port, .. } | Stale::Untranslated { vip, port } => (vip, port),
    };
    let family = if vip.is_ipv4() { "ipv4" } else { "ipv6" };
    let mut a: Vec<String> = ["-D", "-f", family, "-p", "udp", "--orig-dst"]
        .map(String::from)
        .into();
    a.extend([vip.to_string(), "--orig-port-dst".into(), port.to_string()]);
    match stale {
        Stale::Backend { backend, .. } => a.extend(["--dst-nat".into(), backend.to_string()]),
        // An untranslated flow's reply comes from where it was sent.
        Stale::Untranslated { .. } => a.extend([
            "--reply-src".into(),
            vip.to_string(),
            "--reply-port-src".into(),
            port.to_string(),
        ]),
    }
    a
}

/// Delete the entries (each `conntrack` run finding none is fine).
pub async fn delete(stale: &BTreeSet<Stale>) {
    for s in stale {
        let result = Command::new("conntrack")
            .args(args(s))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if let Err(e) = result {
            tracing::warn!("cannot run conntrack (install the Debian package conntrack): {e}");
            return;
        }
    }
}

#[cfg(test)]
mod tests;
