//! Where a Service has serving endpoints, by the rules of [`crate::ipvs::build`]: ready
//! endpoints, or serving-terminating ones when none is ready.

use crate::alloc::ServiceKey;
use crate::snapshot::Snapshot;
use std::collections::BTreeSet;

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
            for ep in &slice.endpoints {
                // The family of the first address, as the data path reads it.
                let Some(addr) = ep.address else {
                    continue;
                };
                if addr.is_ipv4() != v4 {
                    continue;
                }
                let set = if ep.ready {
                    &mut ready
                } else if ep.serving && ep.terminating {
                    &mut terminating
                } else {
                    continue;
                };
                set.anywhere = true;
                set.nodes.extend(ep.node.as_deref().map(str::to_string));
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
