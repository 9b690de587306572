//! The kernel IPVS data path (`--dataplane ipvs`): the generic netlink
//! socket that programs and reads the kernel's virtual server table ([`socket::IpvsSocket`]),
//! and the two steps a driver repeats around the pure plan (`ferrolb_shared::ipvs::kernel`):
//! read what the kernel holds ([`read`]), carry out the requests ([`apply`]); and
//! [`table::IpvsTable`], which keeps the kernel's table in line with the node's virtual server
//! table pass after pass. Proven against a stock kernel in the VM lab (`tests/ipvs_kernel.rs`,
//! run by `tests/vm.sh`). [`path::IpvsPath`] puts it together with the dummy interface
//! ([`addresses`]), the sysctls ([`sysctls`]) and FerroLB's nftables table around IPVS: the
//! `--dataplane ipvs` mode.

pub mod addresses;
pub mod path;
pub mod socket;
pub mod sysctls;
pub mod table;

use ferrolb_shared::ipvs::genl::ServiceId;
use ferrolb_shared::ipvs::kernel::{Held, HeldDest, Request};
use socket::{IpvsError, IpvsSocket};
use std::collections::BTreeMap;

/// The kernel's whole virtual server table, with every real server's connection count.
pub fn read(socket: &mut IpvsSocket) -> Result<BTreeMap<ServiceId, Held>, IpvsError> {
    let mut held = BTreeMap::new();
    for service in socket.services()? {
        let dests = socket
            .dests(&service.id)?
            .into_iter()
            .map(|d| {
                let connections = d.active.saturating_add(d.inactive);
                (
                    (d.dest.addr, d.dest.port),
                    HeldDest {
                        dest: d.dest,
                        connections,
                    },
                )
            })
            .collect();
        held.insert(service.id, Held { service, dests });
    }
    Ok(held)
}

/// Sends `requests` in order, one netlink message each; stops at the first the kernel refuses.
pub fn apply(socket: &mut IpvsSocket, requests: &[Request]) -> Result<(), IpvsError> {
    requests.iter().try_for_each(|r| apply_one(socket, r))
}

/// Sends one request and waits for the kernel's answer.
pub fn apply_one(socket: &mut IpvsSocket, request: &Request) -> Result<(), IpvsError> {
    match request {
        Request::Service(cmd, service) => socket.service(*cmd, service),
        Request::Dest(cmd, id, dest) => socket.dest(*cmd, id, dest),
    }
}
