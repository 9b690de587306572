//! Virtual servers for the data paths' tests (nftables program, IPVS plan, and the kernel
//! suites that check them against real kernels). Not used by the binaries.

use super::model::{EndpointState, Frontend, Proto, RealServer, Table, VirtualServer, VsKey};
use super::scheduler::SchedulerKind;
use crate::alloc::ServiceKey;

/// A ready real server of weight 1 on another node.
pub fn rs(addr: &str, port: u16) -> RealServer {
    RealServer {
        addr: addr.parse().unwrap(),
        port,
        weight: 1,
        local: false,
        state: EndpointState::Ready,
        name: addr.into(),
    }
}

/// A TCP LoadBalancer virtual server of Service default/web.
pub fn vs(
    addr: &str,
    port: u16,
    scheduler: SchedulerKind,
    servers: Vec<RealServer>,
) -> VirtualServer {
    VirtualServer {
        key: VsKey {
            proto: Proto::Tcp,
            addr: addr.parse().unwrap(),
            port,
        },
        service: ServiceKey::new("default", "web"),
        port_name: "http".into(),
        frontend: Frontend::LoadBalancer,
        scheduler,
        scheduler_flags: Default::default(),
        affinity: None,
        masquerade: true,
        drop: false,
        real_servers: servers,
    }
}

pub fn table(servers: Vec<VirtualServer>) -> Table {
    Table {
        servers: servers.into_iter().map(|v| (v.key, v)).collect(),
        ..Default::default()
    }
}
