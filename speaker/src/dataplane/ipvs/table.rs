//! Keeps the kernel's IPVS table in line with the node's virtual server table: the first pass
//! reads the whole kernel table (adopting what a previous FerroLB left, never touching what
//! another tool made); later passes look only at the virtual servers a change touched (and
//! those with a real server draining) and send only the differences, one netlink message per
//! virtual or real server that changed, against a copy of the kernel's table kept from the
//! requests it accepted (only the connection counts of draining real servers are read back).
//! So a change costs the same whatever the size of the table.
//!
//! Which virtual servers are FerroLB's is remembered in a state file (one per line, written
//! before any of them is created), so a speaker that crashed and restarts knows what its
//! predecessor made: the kernel's table has no place for an owner.

use super::socket::{IpvsError, IpvsSocket};
use super::{apply_one, read};
use ferrolb_shared::ipvs::genl::{Command, ServiceId};
use ferrolb_shared::ipvs::kernel::{self, Draining, Held, Request};
use ferrolb_shared::ipvs::model::{Proto, Table, VsKey};
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

    /// Brings the kernel in line with `table`, looking only at the `touched` virtual servers
    /// when the caller knows them (`None`: all); returns the requests sent. After an error the
    /// next pass reads the kernel's table whole again and looks at everything.
    pub fn apply(
        &mut self,
        table: &Table,
        touched: Option<&BTreeSet<VsKey>>,
        now: Instant,
    ) -> Result<Vec<Request>, IpvsError> {
        let scope = touched.filter(|_| self.held.is_some()).map(|keys| {
            keys.iter()
                .map(kernel::service_id)
                .chain(self.draining.services())
                .collect::<BTreeSet<ServiceId>>()
        });
        let wanted: BTreeMap<ServiceId, kernel::Wanted> = match &scope {
            Some(ids) => ids
                .iter()
                .filter_map(|id| match id {
                    ServiceId::Addr { proto, addr, port } => table.servers.get(&VsKey {
                        proto: *proto,
                        addr: *addr,
                        port: *port,
                    }),
                    ServiceId::Fwmark { .. } => None,
                })
                .map(|vs| {
                    let w = kernel::wanted_server(vs);
                    (w.service.id, w)
                })
                .collect(),
            None => kernel::wanted(table),
        };
        let result = self.apply_wanted(&wanted, scope.as_ref(), now);
        if result.is_err() {
            self.held = None;
        }
        result
    }

    /// Opens the IPVS socket if it is not open yet (which loads `ip_vs`).
    pub fn open(&mut self) -> Result<(), IpvsError> {
        if self.socket.is_none() {
            self.socket = Some(IpvsSocket::open()?);
        }
        Ok(())
    }

    /// Deletes every virtual server FerroLB owns (a clean stop).
    pub fn remove(&mut self, now: Instant) -> Result<Vec<Request>, IpvsError> {
        self.held = None;
        let sent = self.apply_wanted(&BTreeMap::new(), None, now)?;
        self.draining = Draining::default();
        Ok(sent)
    }

    /// When a draining real server is due for deletion at the latest, if any drains.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.draining.next_deadline()
    }

    /// Plans and sends the changes within `scope` (`None`: the whole table).
    fn apply_wanted(
        &mut self,
        wanted: &BTreeMap<ServiceId, kernel::Wanted>,
        scope: Option<&BTreeSet<ServiceId>>,
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
        // Claimed before anything is created: a crash in between leaves a claim on a virtual
        // server that does not exist, never one that exists unclaimed.
        let new_claims: Vec<ServiceId> = wanted
            .keys()
            .filter(|id| !self.owned.contains(*id))
            .copied()
            .collect();
        if !new_claims.is_empty() {
            self.owned.extend(new_claims);
            save(&self.state_file, &self.owned)?;
        }
        let requests = match scope {
            Some(ids) => {
                let part: BTreeMap<ServiceId, Held> = ids
                    .iter()
                    .filter_map(|id| Some((*id, held.get(id)?.clone())))
                    .collect();
                kernel::plan(wanted, &part, &self.owned, &mut self.draining, now)
            }
            None => kernel::plan(wanted, held, &self.owned, &mut self.draining, now),
        };
        let mut released = false;
        for request in &requests {
            apply_one(socket, request)?;
            kernel::record(held, request);
            if let Request::Service(Command::DelService, svc) = request {
                released |= self.owned.remove(&svc.id);
            }
        }
        if released {
            save(&self.state_file, &self.owned)?;
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
