//! One node's forwarding program, kept in line with the snapshots: the incremental virtual
//! server table ([`TableBuilder`]), the data path it is programmed into, and the health-check
//! node ports. The driver ([`super::spawn`]) calls [`Programmer::on_snapshot`] for every
//! snapshot and [`Programmer::retry`] when a program failed; the forwarding benchmark drives
//! the same code, so what it times is what the speaker does.

use super::Mode;
use super::healthcheck::HealthChecks;
use super::ipvs::path::{IpvsPath, IpvsSettings};
use super::nftables::{NftError, NftablesDataplane};
use super::userspace::{self, UserspaceProxy};
use crate::events::{EventType, Events, ServiceEvent};
use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::ipvs::build::Options;
use ferrolb_shared::ipvs::incremental::{Delta, TableBuilder};
use ferrolb_shared::ipvs::model::{HealthCheck, Table, VsKey};
use ferrolb_shared::ipvs::nft::RoundRobin;
use ferrolb_shared::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;

/// The data path's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: Mode,
    pub table: Options,
    /// Local ports of the userspace proxy's listeners.
    pub proxy_ports: RangeInclusive<u16>,
    /// Where health-check node ports listen (`[::]`: every address, both families).
    pub health_bind: IpAddr,
    /// The IPVS path's interface and state file.
    pub ipvs: IpvsSettings,
    /// The nftables path's round-robin layout (a chain per virtual server, or shared chains).
    pub nft_round_robin: RoundRobin,
}

impl Settings {
    pub fn new(mode: Mode) -> Self {
        Settings {
            mode,
            table: Options::default(),
            proxy_ports: userspace::DEFAULT_PORTS,
            health_bind: std::net::Ipv6Addr::UNSPECIFIED.into(),
            ipvs: IpvsSettings::default(),
            nft_round_robin: RoundRobin::default(),
        }
    }
}

/// What one programming pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Virtual servers looked at (all of them on a full program).
    pub touched: usize,
    pub full: bool,
    /// The data path refused the program; [`Programmer::retry`] programs everything again.
    pub failed: Option<String>,
    /// Time spent updating the virtual server table, and programming the data path.
    pub build: std::time::Duration,
    pub apply: std::time::Duration,
}

pub struct Programmer {
    /// `false` with `--dataplane none`: another data path forwards, so no table is built (at
    /// 10,000 Services it would be a fifth of the speaker's memory, for nobody).
    forwards: bool,
    builder: TableBuilder,
    /// Where refused schedulers are reported (besides the log).
    events: Option<Events>,
    /// Virtual servers the kernel path refused in the last pass.
    refused: Vec<(ServiceKey, String)>,
    nft: Option<NftablesDataplane>,
    ipvs: Option<IpvsPath>,
    proxy: Option<UserspaceProxy>,
    health: Option<HealthChecks>,
    /// The last program failed: the next pass programs everything.
    failed: bool,
    /// Problems already logged, so a problem is logged once, not on every snapshot.
    reported: BTreeSet<String>,
}

impl Programmer {
    pub fn new(settings: &Settings) -> Self {
        let mode = settings.mode;
        Programmer {
            forwards: mode != Mode::None,
            builder: TableBuilder::new(settings.table.clone()),
            events: None,
            refused: Vec::new(),
            nft: match mode {
                Mode::Nftables => Some(NftablesDataplane::kernel(settings.nft_round_robin)),
                Mode::Userspace => Some(NftablesDataplane::proxy(settings.proxy_ports.clone())),
                Mode::Ipvs | Mode::None | Mode::Auto => None,
            },
            ipvs: (mode == Mode::Ipvs).then(|| IpvsPath::new(&settings.ipvs)),
            proxy: (mode == Mode::Userspace).then(|| {
                UserspaceProxy::new(
                    settings.proxy_ports.clone(),
                    userspace::DEFAULT_UDP_IDLE_TIMEOUT,
                )
            }),
            // Whoever forwards for the node answers its health checks; with `none` that is
            // someone else (kube-proxy), which would hold the ports.
            health: (mode != Mode::None).then(|| HealthChecks::new(settings.health_bind)),
            failed: false,
            reported: BTreeSet::new(),
        }
    }

    /// Report refused schedulers as Events on their Services too.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }

    /// The table as of the last snapshot.
    pub fn table(&self) -> &Table {
        self.builder.table()
    }

    /// The userspace proxy, if this is the userspace path.
    pub fn proxy(&self) -> Option<&UserspaceProxy> {
        self.proxy.as_ref()
    }

    /// Bring the data path in line with `snapshot`, touching only what changed.
    pub async fn on_snapshot(&mut self, snapshot: &Snapshot) -> Outcome {
        if !self.forwards {
            return Outcome::default();
        }
        let started = std::time::Instant::now();
        let delta = self.builder.update(snapshot);
        let build = started.elapsed();
        for w in &delta.warnings {
            self.report(format!("{}: {}", w.service, w.message));
        }
        if delta.is_empty() && !self.failed {
            return Outcome {
                build,
                ..Outcome::default()
            };
        }
        let mut outcome = self.program(Some(&delta)).await;
        outcome.build = build;
        if let Some(events) = &self.events {
            for (service, message) in std::mem::take(&mut self.refused) {
                let uid = snapshot
                    .services
                    .get(&service)
                    .and_then(|s| s.uid.as_deref().map(String::from));
                events.record(ServiceEvent {
                    service,
                    uid,
                    kind: EventType::Warning,
                    reason: "SchedulerRefused",
                    message,
                });
            }
        }
        outcome
    }

    /// Program everything again (after a failure).
    pub async fn retry(&mut self) -> Outcome {
        self.program(None).await
    }

    /// Whether the last program failed (and [`Self::retry`] is due).
    pub fn failed(&self) -> bool {
        self.failed
    }

    async fn program(&mut self, delta: Option<&Delta>) -> Outcome {
        let started = std::time::Instant::now();
        // After a failure nothing is known about the data path: look at everything.
        let touched = delta
            .filter(|d| !d.full && !self.failed)
            .map(|d| &d.servers);
        let mut outcome = Outcome {
            touched: touched.map_or(self.builder.table().servers.len(), BTreeSet::len),
            full: touched.is_none(),
            failed: None,
            ..Outcome::default()
        };
        if let Some(nft) = self.nft.as_mut() {
            let table = self.builder.table();
            // No listener opens before its port range is closed to direct access (a no-op
            // on the kernel path and once done).
            let guard = nft.close_proxy_ports().await;
            let ports = match self.proxy.as_mut() {
                _ if guard.is_err() => BTreeMap::new(),
                Some(p) => {
                    let (ports, errors) = p.apply(table, touched).await;
                    for e in errors {
                        report(&mut self.reported, e.to_string());
                    }
                    ports
                }
                None => {
                    self.refused = refused_schedulers(nft, table, touched);
                    for (service, message) in &self.refused {
                        report(&mut self.reported, format!("{service}: {message}"));
                    }
                    BTreeMap::new()
                }
            };
            let result: Result<(), NftError> = match guard {
                Ok(()) => nft.apply(table, touched, &ports).await,
                Err(e) => Err(e),
            };
            self.failed = result.is_err();
            outcome.failed = result.err().map(|e| e.to_string());
        }
        if let Some(ipvs) = self.ipvs.as_mut() {
            let result = ipvs.apply(self.builder.table(), touched).await;
            self.failed = result.is_err();
            outcome.failed = result.err().map(|e| e.to_string());
        }
        outcome.apply = started.elapsed();
        // After the data path, so a 200 never announces a node that does not forward yet;
        // and a node whose data path could not be programmed answers 503 everywhere.
        let health_changed = delta.is_none_or(|d| d.health_checks || d.full);
        if let Some(h) = self.health.as_mut()
            && (health_changed || outcome.failed.is_some())
        {
            let checks = if outcome.failed.is_some() {
                unhealthy(&self.builder.table().health_checks)
            } else {
                self.builder.table().health_checks.clone()
            };
            for e in h.apply(&checks).await {
                report(&mut self.reported, e.to_string());
            }
        }
        outcome
    }

    /// When the draining real servers of the IPVS path are to be looked at next, if any.
    pub fn next_drain_check(&self) -> Option<std::time::Instant> {
        self.ipvs.as_ref()?.next_drain_check()
    }

    /// Deletes the IPVS path's drained real servers (their connections are gone or their
    /// time is up); nothing else is looked at.
    pub async fn drain(&mut self) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some(ipvs) = self.ipvs.as_mut()
            && let Err(e) = ipvs.drain(self.builder.table()).await
        {
            self.failed = true;
            outcome.failed = Some(e.to_string());
        }
        outcome
    }

    /// Stop listening and, on a clean stop, remove what was programmed.
    pub async fn shutdown(&mut self) {
        if let Some(h) = self.health.as_mut() {
            h.shutdown();
        }
        if let Some(p) = self.proxy.as_mut() {
            p.shutdown();
        }
        if let Some(nft) = self.nft.as_mut() {
            match nft.remove().await {
                Ok(()) => tracing::info!("nftables tables removed"),
                Err(e) => tracing::warn!("cannot remove the nftables tables: {e}"),
            }
        }
        if let Some(ipvs) = self.ipvs.as_mut() {
            match ipvs.remove().await {
                Ok(()) => {
                    tracing::info!("IPVS virtual servers, service addresses and rules removed")
                }
                Err(e) => tracing::warn!("cannot remove the IPVS path: {e}"),
            }
        }
    }

    fn report(&mut self, message: String) {
        report(&mut self.reported, message);
    }
}

/// The virtual servers the kernel path refuses (schedulers needing connection counts), by
/// Service, with why.
fn refused_schedulers(
    nft: &NftablesDataplane,
    table: &Table,
    touched: Option<&BTreeSet<VsKey>>,
) -> Vec<(ServiceKey, String)> {
    nft.unsupported(table, touched)
        .into_iter()
        .filter_map(|u| {
            let service = table.servers.get(&u.vs)?.service.clone();
            Some((service, format!("{u}")))
        })
        .collect()
}

/// Every health check answering "no local endpoint".
fn unhealthy(checks: &BTreeMap<u16, HealthCheck>) -> BTreeMap<u16, HealthCheck> {
    checks
        .iter()
        .map(|(port, hc)| {
            let mut hc = hc.clone();
            hc.local_endpoints = 0;
            (*port, hc)
        })
        .collect()
}

/// Log a problem the first time it is seen, not on every snapshot.
fn report(seen: &mut BTreeSet<String>, message: String) {
    if seen.insert(message.clone()) {
        tracing::error!("{message}");
    }
}
