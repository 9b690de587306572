//! One of the speaker's data paths, running in a lab node for the traffic scenarios
//! (`--scenario serve nftables|userspace|ipvs VIP BACKEND`): the same `NftablesDataplane`,
//! `UserspaceProxy` and `IpvsPath` the speaker drives, fed the table of one LoadBalancer Service at VIP whose
//! only endpoint is BACKEND (iperf3 on 5201, the echo server on 7000). It prints `ready` once
//! programmed and serves until it is stopped (at most 10 minutes).

use crate::child::require_lab_netns;
use crate::services;
use ferrolb_speaker::dataplane::ipvs::path::{IpvsPath, IpvsSettings};
use ferrolb_speaker::dataplane::nftables::NftablesDataplane;
use ferrolb_speaker::dataplane::userspace::{
    DEFAULT_PORTS, DEFAULT_UDP_IDLE_TIMEOUT, UserspaceProxy,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The ports of the Service: iperf3 and the echo server's TCP port.
pub const PORTS: [(&str, u16); 2] = [("iperf", 5201), ("echo", 7000)];
/// How long a data path serves at most.
const LIFETIME: Duration = Duration::from_secs(600);

pub fn child(mode: &str, vip: IpAddr, backend: IpAddr) -> Result<(), String> {
    require_lab_netns()?;
    let node_addr = IpAddr::from(Ipv4Addr::new(10, 100, 0, 11));
    let (svc, slice) = services::load_balancer(vip, backend, "node1", &PORTS);
    let table = services::table(&[svc], &[slice], "node1", node_addr);
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        if mode == "ipvs" {
            let settings = IpvsSettings {
                state_file: std::env::temp_dir()
                    .join(format!("ferrolb-bench-ipvs-{}", std::process::id())),
                ..IpvsSettings::default()
            };
            let mut ipvs = IpvsPath::new(&settings);
            ipvs.apply(&table, None).await.map_err(|e| e.to_string())?;
            println!("ready: {} virtual servers", table.servers.len());
            let _ = std::io::stdout().flush();
            tokio::time::sleep(LIFETIME).await;
            return Ok(());
        }
        let (mut nft, proxy, ports) = match mode {
            "nftables" => (
                NftablesDataplane::kernel(Default::default()),
                None,
                BTreeMap::new(),
            ),
            "userspace" => {
                let mut nft = NftablesDataplane::proxy(DEFAULT_PORTS);
                nft.close_proxy_ports().await.map_err(|e| e.to_string())?;
                let mut p = UserspaceProxy::new(DEFAULT_PORTS, DEFAULT_UDP_IDLE_TIMEOUT);
                let (ports, errors) = p.apply(&table, None).await;
                if let Some(e) = errors.first() {
                    return Err(e.to_string());
                }
                (nft, Some(p), ports)
            }
            other => return Err(format!("unknown data path {other}")),
        };
        nft.apply(&table, None, &ports)
            .await
            .map_err(|e| e.to_string())?;
        println!("ready: {} virtual servers", table.servers.len());
        let _ = std::io::stdout().flush();
        tokio::time::sleep(LIFETIME).await;
        drop(proxy);
        Ok(())
    })
}
