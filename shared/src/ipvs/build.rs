//! Services + EndpointSlices + this node → the virtual server table, with kube-proxy's rules:
//! headless and ExternalName Services are skipped; ready endpoints first, serving-terminating
//! ones only when none is ready; `externalTrafficPolicy` and `internalTrafficPolicy` Local keep
//! traffic on this node's endpoints (and drop it when there are none); Cluster masquerades
//! external traffic; `sessionAffinity: ClientIP` pins a client for its timeout.

use super::model::*;
use super::scheduler::{SchedulerFlags, SchedulerKind};
use crate::alloc::ServiceKey;
use crate::endpoints::Slice;
use crate::service::{Port, Service, ServiceType, annotation, service_key};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Annotation (under any accepted prefix) that picks the scheduler of a Service.
pub const SCHEDULER_ANNOTATION: &str = "scheduler";
/// Annotation with the sh and mh options ([`SchedulerFlags`]: `fallback`, `port`).
pub const SCHEDULER_FLAGS_ANNOTATION: &str = "scheduler-flags";
/// Kubernetes' default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY: Duration = Duration::from_secs(10_800);

/// This node, as the forwarding layer sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// Addresses NodePorts listen on.
    pub addresses: Vec<IpAddr>,
}

/// Cluster-wide settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub node_port_range: RangeInclusive<u16>,
    pub default_scheduler: SchedulerKind,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_port_range: 30000..=32767,
            default_scheduler: SchedulerKind::Rr,
        }
    }
}

/// Something in a Service that was ignored, with the reason, for logs and Events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub service: ServiceKey,
    pub message: String,
}

/// Build the table. Never fails: what cannot be used is skipped with a [`Warning`].
pub fn build_table(
    services: &[Service],
    slices: &[Slice],
    node: &NodeView,
    opts: &Options,
) -> (Table, Vec<Warning>) {
    let mut by_service: BTreeMap<ServiceKey, Vec<&Slice>> = BTreeMap::new();
    for s in slices {
        if let Some(name) = s.service_name() {
            let ns = s.namespace.as_deref().unwrap_or("default");
            by_service
                .entry(ServiceKey::new(ns, name))
                .or_default()
                .push(s);
        }
    }
    let mut table = Table::default();
    let mut warnings = Vec::new();
    for svc in services {
        let key = service_key(svc);
        let no_slices = Vec::new();
        let slices = by_service.get(&key).unwrap_or(&no_slices);
        add_service(svc, &key, slices, node, opts, &mut table, &mut warnings);
    }
    (table, warnings)
}

/// Add the virtual servers (and health check) of one Service to `table`.
pub(crate) fn add_service(
    svc: &Service,
    key: &ServiceKey,
    slices: &[&Slice],
    node: &NodeView,
    opts: &Options,
    table: &mut Table,
    warnings: &mut Vec<Warning>,
) {
    let type_ = svc.type_;
    if type_ == ServiceType::ExternalName || svc.headless {
        return; // headless or ExternalName: DNS only, nothing to forward
    }
    let mut warn = |message: String| {
        warnings.push(Warning {
            service: key.clone(),
            message,
        })
    };
    let scheduler = match annotation(svc, SCHEDULER_ANNOTATION) {
        None => opts.default_scheduler,
        Some((prefix, value)) => value.parse().unwrap_or_else(|e| {
            warn(format!(
                "annotation {prefix}{SCHEDULER_ANNOTATION}: {e}; using {}",
                opts.default_scheduler
            ));
            opts.default_scheduler
        }),
    };
    let scheduler_flags = match annotation(svc, SCHEDULER_FLAGS_ANNOTATION) {
        None => SchedulerFlags::default(),
        Some((prefix, value)) => match value.parse::<SchedulerFlags>() {
            Ok(flags) if !flags.any() || SchedulerFlags::apply_to(scheduler) => flags,
            Ok(flags) => {
                warn(format!(
                    "annotation {prefix}{SCHEDULER_FLAGS_ANNOTATION}: {flags} applies to the sh and mh schedulers only, not {scheduler}; ignored"
                ));
                SchedulerFlags::default()
            }
            Err(e) => {
                warn(format!(
                    "annotation {prefix}{SCHEDULER_FLAGS_ANNOTATION}: {e}; ignored"
                ));
                SchedulerFlags::default()
            }
        },
    };
    let affinity = svc.affinity;
    let external_local = svc.external_local;
    let internal_local = svc.internal_local;
    let lb_ips: &[IpAddr] = if type_ == ServiceType::LoadBalancer {
        &svc.status_ips
    } else {
        &[]
    };
    let mut local_endpoints = 0;
    for port in &svc.ports {
        let proto = match &port.protocol {
            Ok(proto) => *proto,
            Err(unknown) => {
                warn(format!(
                    "port {}: unknown protocol {:?}",
                    port.port,
                    Some(unknown)
                ));
                continue;
            }
        };
        let Ok(svc_port) = u16::try_from(port.port) else {
            continue;
        };
        let (all, local) = endpoints_for(port, proto, slices, &node.name);
        // Counted per family, as kube-proxy's per-family proxiers do: a dual-stack pod is one
        // local endpoint, not two.
        let v4 = local.iter().filter(|r| r.addr.is_ipv4()).count();
        local_endpoints = local_endpoints.max(v4).max(local.len() - v4);
        let mut add = |addr: IpAddr, vport: u16, frontend: Frontend| {
            let is_local_policy = if frontend.is_external() {
                external_local
            } else {
                internal_local
            };
            let family_ok = |r: &&RealServer| r.addr.is_ipv4() == addr.is_ipv4();
            let chosen: Vec<RealServer> = if is_local_policy { &local } else { &all }
                .iter()
                .filter(family_ok)
                .cloned()
                .collect();
            let vs = VirtualServer {
                key: VsKey {
                    proto,
                    addr,
                    port: vport,
                },
                service: key.clone(),
                port_name: port.name.to_string(),
                frontend,
                scheduler,
                scheduler_flags,
                affinity,
                masquerade: frontend.is_external() && !external_local,
                drop: is_local_policy && chosen.is_empty(),
                real_servers: chosen,
            };
            table.servers.insert(vs.key, vs);
        };
        for ip in &svc.cluster_ips {
            add(*ip, svc_port, Frontend::ClusterIp);
        }
        for ip in &svc.external_ips {
            add(*ip, svc_port, Frontend::ExternalIp);
        }
        for ip in lb_ips {
            add(*ip, svc_port, Frontend::LoadBalancer);
        }
        if type_.has_node_ports() {
            match port.node_port.map(u16::try_from) {
                Some(Ok(np)) if opts.node_port_range.contains(&np) => {
                    for ip in &node.addresses {
                        add(*ip, np, Frontend::NodePort);
                    }
                }
                Some(_) => warn(format!(
                    "port {}: nodePort {} is outside the range {}-{}",
                    port.port,
                    port.node_port.unwrap_or_default(),
                    opts.node_port_range.start(),
                    opts.node_port_range.end()
                )),
                None => {}
            }
        }
    }
    if type_ == ServiceType::LoadBalancer
        && external_local
        && let Some(hc) = svc
            .health_check_node_port
            .and_then(|p| u16::try_from(p).ok())
    {
        table.health_checks.insert(
            hc,
            HealthCheck {
                port: hc,
                service: key.clone(),
                local_endpoints,
            },
        );
    }
}

/// The real servers for one Service port: (all usable, this node's usable). Ready endpoints
/// are used; serving-terminating ones only when no ready one exists (separately for the
/// cluster-wide and the local set, as kube-proxy does).
fn endpoints_for(
    port: &Port,
    proto: Proto,
    slices: &[&Slice],
    node: &str,
) -> (Vec<RealServer>, Vec<RealServer>) {
    let want = &*port.name;
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    for slice in slices {
        // The slice's port of the same name carries the target port resolved for its pods.
        let Some(target_port) = slice
            .ports
            .iter()
            .find(|p| &*p.name == want && p.protocol == Some(proto))
            .and_then(|p| p.port)
        else {
            continue;
        };
        for ep in &slice.endpoints {
            let state = if ep.ready {
                EndpointState::Ready
            } else if ep.serving && ep.terminating {
                EndpointState::Terminating
            } else {
                continue;
            };
            let Some(addr) = ep.address else {
                continue;
            };
            let rs = RealServer {
                addr,
                port: target_port,
                weight: 1,
                local: ep.node.as_deref() == Some(node),
                state,
                name: ep
                    .target
                    .as_deref()
                    .map_or_else(|| addr.to_string(), str::to_string),
            };
            if state == EndpointState::Ready {
                &mut ready
            } else {
                &mut terminating
            }
            .insert(rs);
        }
    }
    let pick = |local_only: bool| -> Vec<RealServer> {
        let keep = |r: &&RealServer| !local_only || r.local;
        let r: Vec<RealServer> = ready.iter().filter(keep).cloned().collect();
        if r.is_empty() {
            terminating.iter().filter(keep).cloned().collect()
        } else {
            r
        }
    };
    (dedup(pick(false)), dedup(pick(true)))
}

/// One real server per address and port (the same endpoint can appear in two slices).
fn dedup(mut v: Vec<RealServer>) -> Vec<RealServer> {
    v.sort_by_key(|a| (a.addr, a.port));
    v.dedup_by(|a, b| a.addr == b.addr && a.port == b.port);
    v
}

#[cfg(test)]
mod tests;
