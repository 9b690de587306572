//! The IPVS schedulers, with the kernel's definitions (net/netfilter/ipvs/ip_vs_*.c):
//! rr, wrr, lc, wlc, sed, nq, sh, dh and mh (Maglev). A scheduler is built for one virtual
//! server's set of real servers and picks one of them per new connection.

use super::hash::kernel_bucket;
use super::maglev::{DEFAULT_TABLE_SIZE, MaglevBackend, MaglevError, MaglevTable};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Which algorithm picks the real server for a new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedulerKind {
    /// Round robin.
    #[default]
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Source hashing.
    Sh,
    /// Destination hashing.
    Dh,
    /// Maglev hashing (of the source address).
    Mh,
}

impl SchedulerKind {
    pub const ALL: [SchedulerKind; 9] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Sh,
        SchedulerKind::Dh,
        SchedulerKind::Mh,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Mh => "mh",
        }
    }

    /// Whether the choice needs live connection counts, which the kernel's IPVS and the
    /// userspace path keep: the nftables path cannot express these.
    pub fn needs_connection_counts(self) -> bool {
        matches!(
            self,
            SchedulerKind::Lc | SchedulerKind::Wlc | SchedulerKind::Sed | SchedulerKind::Nq
        )
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler {0:?}: use one of rr, wrr, lc, wlc, sed, nq, sh, dh, mh")]
pub struct UnknownScheduler(pub String);

impl FromStr for SchedulerKind {
    type Err = UnknownScheduler;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedulerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownScheduler(s.to_string()))
    }
}

/// The options of the hashing schedulers sh and mh, as IPVS has them (ipvsadm's
/// `-b sh-fallback,sh-port` / `mh-fallback,mh-port`, the service flags `SCHED1` and `SCHED2`):
/// `fallback` sends a client elsewhere when its real server is unavailable (weight 0,
/// overloaded) instead of refusing it; `port` hashes the source port with the address, so one
/// client's connections spread. Set per Service with the annotation `ferrolb.io/scheduler-flags`
/// (`fallback`, `port`, or both, comma-separated). Only the kernel's IPVS carries them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchedulerFlags {
    pub fallback: bool,
    pub port: bool,
}

impl SchedulerFlags {
    /// Whether any flag is set.
    pub fn any(self) -> bool {
        self.fallback || self.port
    }

    /// Whether `kind` has these options at all (sh and mh).
    pub fn apply_to(kind: SchedulerKind) -> bool {
        matches!(kind, SchedulerKind::Sh | SchedulerKind::Mh)
    }
}

impl fmt::Display for SchedulerFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.fallback, "fallback"), (self.port, "port")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler flag {0:?}: use fallback, port or both (comma-separated)")]
pub struct UnknownSchedulerFlag(pub String);

impl FromStr for SchedulerFlags {
    type Err = UnknownSchedulerFlag;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut flags = SchedulerFlags::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "fallback" => flags.fallback = true,
                "port" => flags.port = true,
                other => return Err(UnknownSchedulerFlag(other.to_string())),
            }
        }
        Ok(flags)
    }
}

/// A real server as the scheduler sees it: identity, weight and live connection counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Stable identity, e.g. `10.244.1.5:8080`, for the hashing schedulers.
    pub id: String,
    pub weight: u32,
    /// Established connections (the userspace path counts them).
    pub active: u32,
    /// Connections in other states.
    pub inactive: u32,
}

/// The parts of a new connection the hashing schedulers look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Buckets of the sh and dh tables, as IPVS (`IP_VS_SH_TAB_SIZE`, `IP_VS_DH_TAB_SIZE`).
pub const HASH_BUCKETS: usize = 256;

/// A scheduler built for one set of real servers. Rebuild it when the set or a weight changes;
/// connection counts may change between picks.
#[derive(Clone, Debug)]
pub struct Scheduler {
    kind: SchedulerKind,
    /// Round robin position (rr, wrr).
    last: Option<usize>,
    /// wrr's current weight, as in ip_vs_wrr.c.
    current_weight: i64,
    /// sh / dh: bucket -> destination index.
    buckets: Vec<usize>,
    maglev: Option<MaglevTable>,
}

impl Scheduler {
    /// Build for `dests` (weights are read now; connection counts at each pick).
    pub fn new(kind: SchedulerKind, dests: &[Dest]) -> Result<Self, MaglevError> {
        let mut s = Scheduler {
            kind,
            last: None,
            current_weight: 0,
            buckets: Vec::new(),
            maglev: None,
        };
        match kind {
            SchedulerKind::Sh | SchedulerKind::Dh => s.buckets = hash_buckets(dests),
            SchedulerKind::Mh => {
                let backends: Vec<MaglevBackend> = dests
                    .iter()
                    .map(|d| MaglevBackend {
                        id: d.id.clone(),
                        weight: d.weight,
                    })
                    .collect();
                s.maglev = Some(MaglevTable::build(&backends, DEFAULT_TABLE_SIZE)?);
            }
            _ => {}
        }
        Ok(s)
    }

    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// The index in `dests` (the same list the scheduler was built for, with current
    /// connection counts) of the real server for `flow`, or `None` when none can take it.
    pub fn pick(&mut self, flow: &Flow, dests: &[Dest]) -> Option<usize> {
        match self.kind {
            SchedulerKind::Rr => self.round_robin(dests),
            SchedulerKind::Wrr => self.weighted_round_robin(dests),
            SchedulerKind::Lc => least_by(dests, overhead, |_| 1),
            SchedulerKind::Wlc => least_by(dests, overhead, |d| u64::from(d.weight)),
            SchedulerKind::Sed => {
                least_by(dests, |d| u64::from(d.active) + 1, |d| u64::from(d.weight))
            }
            SchedulerKind::Nq => dests
                .iter()
                .position(|d| d.weight > 0 && d.active == 0)
                .or_else(|| least_by(dests, |d| u64::from(d.active) + 1, |d| u64::from(d.weight))),
            // The kernel path's hash (`kernel_bucket`), so both paths pick the same server.
            SchedulerKind::Sh => self.bucket(kernel_bucket(flow.src, HASH_BUCKETS as u32), dests),
            SchedulerKind::Dh => self.bucket(kernel_bucket(flow.dst, HASH_BUCKETS as u32), dests),
            SchedulerKind::Mh => {
                let table = self.maglev.as_ref()?;
                let slot = kernel_bucket(flow.src, table.entries.len() as u32);
                let id = &table.at(slot)?.id;
                dests.iter().position(|d| &d.id == id && d.weight > 0)
            }
        }
    }

    fn round_robin(&mut self, dests: &[Dest]) -> Option<usize> {
        let n = dests.len();
        let start = self.last.map_or(0, |l| l + 1);
        let found = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| dests[i].weight > 0)?;
        self.last = Some(found);
        Some(found)
    }

    /// ip_vs_wrr.c: walk the servers, lowering the current weight by the weights' gcd each
    /// lap, and take the first server whose weight reaches it.
    fn weighted_round_robin(&mut self, dests: &[Dest]) -> Option<usize> {
        let max = i64::from(dests.iter().map(|d| d.weight).max()?);
        if max == 0 {
            return None;
        }
        let gcd = i64::from(
            dests
                .iter()
                .map(|d| d.weight)
                .filter(|w| *w > 0)
                .fold(0, gcd),
        );
        let n = dests.len();
        let mut i = self.last.unwrap_or(n - 1);
        // At most max/gcd laps of n steps: bounded even if weights change under us.
        for _ in 0..=(n as i64 * (max / gcd + 1)) {
            i = (i + 1) % n;
            if i == 0 {
                self.current_weight -= gcd;
                if self.current_weight <= 0 {
                    self.current_weight = max;
                }
            }
            if i64::from(dests[i].weight) >= self.current_weight {
                self.last = Some(i);
                return Some(i);
            }
        }
        None
    }

    fn bucket(&self, bucket: usize, dests: &[Dest]) -> Option<usize> {
        let i = *self.buckets.get(bucket)?;
        (dests.get(i)?.weight > 0).then_some(i)
    }
}

/// IPVS's connection overhead: established connections count 256 times more.
fn overhead(d: &Dest) -> u64 {
    (u64::from(d.active) << 8) + u64::from(d.inactive)
}

/// The server with the least `cost / weight` (compared by cross-multiplying, as the kernel
/// does, so no division and no rounding); ties go to the first.
fn least_by(
    dests: &[Dest],
    cost: impl Fn(&Dest) -> u64,
    weight: impl Fn(&Dest) -> u64,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, d) in dests.iter().enumerate().filter(|(_, d)| d.weight > 0) {
        match best {
            None => best = Some(i),
            Some(b) => {
                let (cb, wb) = (u128::from(cost(&dests[b])), u128::from(weight(&dests[b])));
                if u128::from(cost(d)) * wb < cb * u128::from(weight(d)) {
                    best = Some(i);
                }
            }
        }
    }
    best
}

/// sh/dh buckets: servers take consecutive buckets, each `weight` of them per turn, in
/// order of their identity, until all are filled (ip_vs_sh_reassign with weights).
pub fn hash_buckets(dests: &[Dest]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..dests.len()).filter(|&i| dests[i].weight > 0).collect();
    order.sort_by(|&a, &b| dests[a].id.cmp(&dests[b].id));
    if order.is_empty() {
        return Vec::new();
    }
    let mut buckets = Vec::with_capacity(HASH_BUCKETS);
    'fill: loop {
        for &i in &order {
            for _ in 0..dests[i].weight.min(HASH_BUCKETS as u32) {
                if buckets.len() == HASH_BUCKETS {
                    break 'fill;
                }
                buckets.push(i);
            }
        }
    }
    buckets
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests;
