//! Keeps the kernel's IPVS table in line with the node's virtual server table: the first pass
//! reads the whole kernel table (adopting what a previous FerroLB left, never touching what
//! another tool made); later passes send only the differences, one netlink message per
//! virtual or real server that changed, against a copy of the kernel's table kept from the
//! requests it accepted (only the connection counts of draining real servers are read back).
//!
//! Which virtual servers are FerroLB's is remembered in a state file (one per line, written
//! before any of them is created), so a speaker that crashed and restarts knows what its
//! predecessor made: the kernel's table has no place for an owner.

use super::socket::{IpvsError, IpvsSocket};
use super::{apply_one, read};
use ferrolb_shared::ipvs::genl::ServiceId;
use ferrolb_shared::ipvs::kernel::{self, Draining, Held, Request};
use ferrolb_shared::ipvs::model::{Proto, Table};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

/// The default state file: under /run, so it goes with a reboot, as the kernel's table does.
pub const DEFAULT_STATE_FILE: &str = "/run/ferrolb/ipvs-owned";

pub struct IpvsTable {
    socket: Option<IpvsSocket>,
    /// The kernel's table as FerroLB last knew it; `None`: read it whole first.
    held: Option<BTreeMap<ServiceId, Held>>,
    owned: BTreeSet<ServiceId>,
    draining: Draining,
    state_file: PathBuf,
}

impl IpvsTable {
    /// A table keeper remembering its virtual servers in `state_file` (what a previous
    /// FerroLB wrote there is adopted).
    pub fn new(state_file: PathBuf) -> IpvsTable {
        let owned = std::fs::read_to_string(&state_file)
            .map(|text| text.lines().filter_map(parse_id).collect())
            .unwrap_or_default();
        IpvsTable {
            socket: None,
            held: None,
            owned,
            draining: Draining::default(),
            state_file,
        }
    }

    /// Brings the kernel in line with `table`; returns the requests sent. After an error the
    /// next pass reads the kernel's table whole again.
    pub fn apply(&mut self, table: &Table, now: Instant) -> Result<Vec<Request>, IpvsError> {
        let wanted = kernel::wanted(table);
        let result = self.apply_wanted(&wanted, now);
        if result.is_err() {
            self.held = None;
        }
        result
    }

    /// Deletes every virtual server FerroLB owns (a clean stop).
    pub fn remove(&mut self, now: Instant) -> Result<Vec<Request>, IpvsError> {
        self.held = None;
        let sent = self.apply_wanted(&BTreeMap::new(), now)?;
        self.draining = Draining::default();
        Ok(sent)
    }

    /// When a draining real server is due for deletion at the latest, if any drains.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.draining.next_deadline()
    }

    fn apply_wanted(
        &mut self,
        wanted: &BTreeMap<ServiceId, kernel::Wanted>,
        now: Instant,
    ) -> Result<Vec<Request>, IpvsError> {
        let socket = match &mut self.socket {
            Some(s) => s,
            None => self.socket.insert(IpvsSocket::open()?),
        };
        let held = match &mut self.held {
            Some(h) => h,
            None => self.held.insert(read(socket)?),
        };
        // Connection counts of draining real servers: the only thing read back each pass.
        for id in self.draining.services() {
            if let Some(h) = held.get_mut(&id) {
                for d in socket.dests(&id)? {
                    if let Some(hd) = h.dests.get_mut(&(d.dest.addr, d.dest.port)) {
                        hd.connections = d.active.saturating_add(d.inactive);
                    }
                }
            }
        }
        // Written before anything is created: a crash in between leaves a claim on a virtual
        // server that does not exist, never one that exists unclaimed.
        let claimed: BTreeSet<ServiceId> = self
            .owned
            .union(&wanted.keys().copied().collect())
            .copied()
            .collect();
        if claimed != self.owned {
            save(&self.state_file, &claimed)?;
            self.owned = claimed;
        }
        let requests = kernel::plan(wanted, held, &self.owned, &mut self.draining, now);
        for request in &requests {
            apply_one(socket, request)?;
            kernel::record(held, request);
        }
        let kept: BTreeSet<ServiceId> = self
            .owned
            .iter()
            .filter(|id| held.contains_key(*id))
            .copied()
            .collect();
        if kept != self.owned {
            save(&self.state_file, &kept)?;
            self.owned = kept;
        }
        Ok(requests)
    }
}

fn save(path: &PathBuf, owned: &BTreeSet<ServiceId>) -> Result<(), IpvsError> {
    let text: String = owned.iter().filter_map(format_id).collect();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| IpvsError::State {
        path: path.display().to_string(),
        source: e,
    })
}

/// `tcp 10.96.0.1 80`: one owned virtual server per line.
fn format_id(id: &ServiceId) -> Option<String> {
    match id {
        ServiceId::Addr { proto, addr, port } => Some(format!("{proto} {addr} {port}\n")),
        ServiceId::Fwmark { .. } => None,
    }
}

fn parse_id(line: &str) -> Option<ServiceId> {
    let mut parts = line.split_whitespace();
    let proto = match parts.next()? {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        _ => return None,
    };
    let addr = parts.next()?.parse().ok()?;
    let port = parts.next()?.parse().ok()?;
    Some(ServiceId::Addr { proto, addr, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_ids_survive_the_state_file() {
        let ids = [
            ServiceId::Addr {
                proto: Proto::Sctp,
                addr: "fd00:96::1".parse().unwrap(),
                port: 3868,
            },
            ServiceId::Addr {
                proto: Proto::Tcp,
                addr: "10.96.0.1".parse().unwrap(),
                port: 80,
            },
        ];
        for id in ids {
            let line = format_id(&id).unwrap();
            assert_eq!(parse_id(line.trim_end()), Some(id));
        }
        assert_eq!(parse_id("icmp 10.0.0.1 1"), None);
        assert_eq!(parse_id("tcp 10.0.0.1"), None);
        assert_eq!(parse_id("tcp nope 80"), None);
    }
}
