//! The report's inputs from the API server: the status kinds FerroLB writes (ConfigurationState
//! and BGPSessionState in FerroLB's namespace; ServiceL2Status and ServiceBGPStatus beside
//! their Services), the pools' status counters, and the LoadBalancer Services. Read-only: the
//! caller needs `get`/`list` on those kinds, nothing else.

use super::{Announcement, Inputs, Pool};
use ferrolb_shared::config::{
    BGPSessionState, ConfigurationState, IPAddressPool, ServiceBGPStatus, ServiceL2Status,
};
use ferrolb_shared::service;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// Every object of `K` (in `namespace`, or in all of them), naming the kind on failure; a kind
/// whose CRD is not installed reads as none (an older install), with a warning.
async fn list<K>(
    client: &Client,
    namespace: Option<&str>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(s)) if s.is_not_found() => {
            warnings.push(format!(
                "the API server does not serve {}: apply config/install.yaml",
                K::plural(&())
            ));
            Ok(Vec::new())
        }
        Err(e) => Err(anyhow::anyhow!("cannot list {}: {e}", K::plural(&()))),
    }
}

pub async fn read(client: &Client, namespace: &str) -> anyhow::Result<(Inputs, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut inputs = Inputs::default();
    let states: Vec<ConfigurationState> = list(client, Some(namespace), &mut warnings).await?;
    inputs.configuration = states.into_iter().filter_map(|s| s.status).collect();
    let pools: Vec<IPAddressPool> = list(client, None, &mut warnings).await?;
    inputs.pools = pools
        .into_iter()
        .map(|p| {
            let s = p.status.unwrap_or_default();
            Pool {
                name: p.metadata.name.unwrap_or_default(),
                capacity_v4: u128::from(s.assigned_ipv4) + u128::from(s.available_ipv4),
                in_use_v4: s.assigned_ipv4.into(),
                capacity_v6: u128::from(s.assigned_ipv6) + u128::from(s.available_ipv6),
                in_use_v6: s.assigned_ipv6.into(),
            }
        })
        .collect();
    let services: Vec<Service> = list(client, None, &mut warnings).await?;
    for svc in services.into_iter().map(service::Service::from) {
        if svc.type_ == service::ServiceType::LoadBalancer {
            inputs.add_service(&svc);
        }
    }
    let l2: Vec<ServiceL2Status> = list(client, None, &mut warnings).await?;
    for s in l2.into_iter().filter_map(|s| s.status) {
        inputs.layer2.push(Announcement {
            service: format!("{}/{}", s.service_namespace, s.service_name),
            node: s.node,
            interfaces: s.interfaces,
            addresses: s.ips,
        });
    }
    let bgp: Vec<ServiceBGPStatus> = list(client, None, &mut warnings).await?;
    for s in bgp.into_iter().filter_map(|s| s.status) {
        let key = format!("{}/{}", s.service_namespace, s.service_name);
        inputs.bgp.push((key, s.node, s.peers));
    }
    let sessions: Vec<BGPSessionState> = list(client, Some(namespace), &mut warnings).await?;
    inputs.sessions = sessions.into_iter().filter_map(|s| s.status).collect();
    Ok((inputs, warnings))
}
