//! Why an allocation failed, in sentences an operator can act on, naming the address, the pool
//! and the service in the way where there is one.

use super::request::{BackendKey, Family, Protocol, ServiceKey};
use std::fmt;
use std::net::IpAddr;

/// Why [`Allocator::assign`](super::Allocator::assign) failed. The service itself is not
/// repeated in every variant: the caller knows whose request it made and reports the error on
/// that Service. Kept small (`SharingReason` is boxed) because it travels in every `Result`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    #[error("{}", no_pool(.skipped))]
    NoPoolForService { skipped: Vec<SkippedPool> },

    #[error("address pool {pool:?}, asked for by the address-pool annotation, does not exist")]
    UnknownPool { pool: String },

    #[error("address pool {pool:?} may not be used by this service: {reason}")]
    PoolNotForService { pool: String, reason: PoolMismatch },

    #[error("address pool {pool:?} has {} left", exhausted_list(.families))]
    PoolExhausted { pool: String, families: Vec<Family> },

    #[error("no usable address pool has {need} left (tried {pools:?})")]
    NoAddressAvailable {
        need: FamilyNeed,
        pools: Vec<String>,
    },

    #[error("{}", lacking_family(.pool, *.family))]
    FamilyUnavailable {
        family: Family,
        pool: Option<String>,
    },

    #[error(
        "ipFamilyPolicy RequireDualStack needs an IPv4 and an IPv6 address from one pool, but \
         no usable address pool has both IPv4 and IPv6 ranges (tried {pools:?})"
    )]
    DualStackUnavailable { pools: Vec<String> },

    #[error("requested address {ip} is not in any address pool")]
    IpNotInAnyPool { ip: IpAddr },

    #[error("requested address {ip} is not in address pool {pool:?}")]
    IpNotInPool { ip: IpAddr, pool: String },

    #[error(
        "requested address {ip} ends in .0 or .255, which address pool {pool:?} avoids \
         (avoidBuggyIPs)"
    )]
    IpNotAllowedBuggy { ip: IpAddr, pool: String },

    #[error("requested address {ip} is held by {holder}, and they may not share it: {reason}")]
    IpInUse {
        ip: IpAddr,
        holder: ServiceKey,
        reason: Box<SharingReason>,
    },

    #[error(
        "two {family} addresses are requested ({first} and {second}); at most one per family \
         is allowed"
    )]
    TwoIpsSameFamily {
        family: Family,
        first: IpAddr,
        second: IpAddr,
    },

    #[error(
        "requested address {ip} is {}, but the service's ipFamilies are {fams}",
        Family::of(*.ip),
        fams = family_list(.families)
    )]
    IpFamilyNotInService { ip: IpAddr, families: Vec<Family> },

    #[error(
        "ipFamilyPolicy RequireDualStack needs an {family} address too, but only {ips} is \
         requested",
        ips = ip_list(.requested)
    )]
    RequestedIpMissingFamily {
        family: Family,
        requested: Vec<IpAddr>,
    },

    #[error(
        "requested addresses must come from a single pool, but {first} is in address pool \
         {first_pool:?} and {second} in {second_pool:?}"
    )]
    RequestedIpsInDifferentPools {
        first: IpAddr,
        first_pool: String,
        second: IpAddr,
        second_pool: String,
    },
}

/// What a request that found no address needed: the service's families, and whether it needed
/// all of them or would have taken any one (PreferDualStack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyNeed {
    One(Family),
    Both(Family, Family),
    Either(Family, Family),
}

impl fmt::Display for FamilyNeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FamilyNeed::One(a) => write!(f, "a free {a} address"),
            FamilyNeed::Both(a, b) => write!(f, "both a free {a} and a free {b} address"),
            FamilyNeed::Either(a, b) => write!(f, "a free {a} or {b} address"),
        }
    }
}

/// A pool that automatic allocation did not try for a service, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPool {
    pub pool: String,
    pub why: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `autoAssign: false`: only used when asked for by name or address.
    ManualOnly,
    /// Its `serviceAllocation` excludes the service.
    NotForService(PoolMismatch),
}

impl fmt::Display for SkippedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            SkipReason::ManualOnly => write!(
                f,
                "{:?} has autoAssign: false (name it in the address-pool annotation)",
                self.pool
            ),
            SkipReason::NotForService(reason) => write!(f, "{:?}: {reason}", self.pool),
        }
    }
}

/// Why a pool's `serviceAllocation` excludes a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMismatch {
    /// The namespace is neither listed nor selected.
    Namespace { namespace: String },
    /// The service's labels match none of the pool's service selectors.
    ServiceLabels,
}

impl fmt::Display for PoolMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolMismatch::Namespace { namespace } => write!(
                f,
                "namespace {namespace:?} is neither in its namespaces nor matched by its \
                 namespaceSelectors"
            ),
            PoolMismatch::ServiceLabels => {
                f.write_str("the service's labels match none of its serviceSelectors")
            }
        }
    }
}

/// Why a service may not share an address with the service holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharingReason {
    /// The `allow-shared-ip` keys are not equal and non-empty (`None`: no key).
    KeysDiffer {
        ours: Option<String>,
        theirs: Option<String>,
    },
    /// The traffic policies (or, for `Local`, the pod selectors) differ.
    BackendsDiffer {
        ours: BackendKey,
        theirs: BackendKey,
    },
    /// Both expose this protocol and port.
    PortConflict { protocol: Protocol, port: u16 },
}

impl fmt::Display for SharingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharingReason::KeysDiffer {
                ours: None,
                theirs: None,
            } => f.write_str("neither has an allow-shared-ip annotation"),
            SharingReason::KeysDiffer {
                ours: None,
                theirs: Some(k),
            } => write!(
                f,
                "this service has no allow-shared-ip annotation (the holder's key is {k:?})"
            ),
            SharingReason::KeysDiffer {
                ours: Some(_),
                theirs: None,
            } => f.write_str("the holder has no allow-shared-ip annotation"),
            SharingReason::KeysDiffer {
                ours: Some(a),
                theirs: Some(b),
            } => write!(
                f,
                "allow-shared-ip keys differ ({a:?} here, {b:?} on the holder)"
            ),
            SharingReason::BackendsDiffer { ours, theirs } => write!(
                f,
                "services sharing an address must send traffic to the same endpoints, but this \
                 one has {ours} and the holder {theirs}"
            ),
            SharingReason::PortConflict { protocol, port } => {
                write!(f, "both use {protocol}/{port}")
            }
        }
    }
}

fn family_list(families: &[Family]) -> String {
    let names: Vec<String> = families.iter().map(Family::to_string).collect();
    names.join(" and ")
}

fn no_pool(skipped: &[SkippedPool]) -> String {
    if skipped.is_empty() {
        return "no address pool is configured".into();
    }
    let parts: Vec<String> = skipped.iter().map(SkippedPool::to_string).collect();
    format!(
        "no address pool may be used automatically: {}",
        parts.join("; ")
    )
}

fn exhausted_list(families: &[Family]) -> String {
    let parts: Vec<String> = families
        .iter()
        .map(|f| format!("no free {f} address"))
        .collect();
    parts.join(" and ")
}

fn lacking_family(pool: &Option<String>, family: Family) -> String {
    match pool {
        Some(p) => {
            format!("an {family} address is needed but address pool {p:?} has no {family} range")
        }
        None => format!(
            "an {family} address is needed but no usable address pool has an {family} range"
        ),
    }
}

fn ip_list(ips: &[IpAddr]) -> String {
    let names: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    names.join(", ")
}
