//! Where a Service has serving endpoints, by the rules of [`crate::ipvs::build`]: ready
//! endpoints, or serving-terminating ones when none is ready.

use crate::alloc::ServiceKey;
use crate::ipvs::build::conditions;
use crate::snapshot::Snapshot;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Where a Service has serving endpoints, in one address family.
pub(crate) struct Serving {
    /// Somewhere (an endpoint without `nodeName` counts here).
    pub anywhere: bool,
    /// The nodes hosting them.
    pub nodes: BTreeSet<String>,
}

impl Serving {
    pub fn of(snapshot: &Snapshot, service: &ServiceKey, v4: bool) -> Serving {
        let mut ready = Serving::empty();
        let mut terminating = Serving::empty();
        for slice in snapshot.endpoint_slices_of(service) {
            for ep in slice.endpoints.iter().flatten() {
                // The family of the first address, as the data path reads it.
                let Some(addr) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                if addr.is_ipv4() != v4 {
                    continue;
                }
                let (is_ready, serving, is_terminating) = conditions(ep);
                let set = if is_ready {
                    &mut ready
                } else if serving && is_terminating {
                    &mut terminating
                } else {
                    continue;
                };
                set.anywhere = true;
                set.nodes.extend(ep.node_name.clone());
            }
        }
        if ready.anywhere { ready } else { terminating }
    }

    fn empty() -> Serving {
        Serving {
            anywhere: false,
            nodes: BTreeSet::new(),
        }
    }
}
