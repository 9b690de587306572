//! Why an allocation failed, in sentences an operator can act on: each names the service and,
//! where there is one, the address and the pool.

use super::request::{BackendKey, Family, Protocol, ServiceKey};
use std::fmt;
use std::net::IpAddr;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    #[error(
        "no address pool may be used by {service}: none with autoAssign enabled matches its \
         namespace and labels"
    )]
    NoPoolForService { service: ServiceKey },

    #[error("{service} asks for address pool {pool:?}, which does not exist")]
    UnknownPool { service: ServiceKey, pool: String },

    #[error("address pool {pool:?} may not be used by {service}: {reason}")]
    PoolNotForService {
        service: ServiceKey,
        pool: String,
        reason: PoolMismatch,
    },

    #[error("address pool {pool:?} has no free {family} address left for {service}")]
    PoolExhausted {
        service: ServiceKey,
        pool: String,
        family: Family,
    },

    #[error(
        "no address pool usable by {service} has a free {fams} address left (tried {pools:?})",
        fams = family_list(.families)
    )]
    NoAddressAvailable {
        service: ServiceKey,
        families: Vec<Family>,
        pools: Vec<String>,
    },

    #[error(
        "{service} needs an {family} address but {where_}",
        where_ = lacking_family(.pool, *.family)
    )]
    FamilyUnavailable {
        service: ServiceKey,
        family: Family,
        pool: Option<String>,
    },

    #[error(
        "{service} requires dual-stack but no address pool it may use has both IPv4 and IPv6 \
         ranges (tried {pools:?})"
    )]
    DualStackUnavailable {
        service: ServiceKey,
        pools: Vec<String>,
    },

    #[error("{ip} requested by {service} is not in any address pool")]
    IpNotInAnyPool { service: ServiceKey, ip: IpAddr },

    #[error("{ip} requested by {service} is not in address pool {pool:?}")]
    IpNotInPool {
        service: ServiceKey,
        ip: IpAddr,
        pool: String,
    },

    #[error(
        "{ip} requested by {service} ends in .0 or .255, which address pool {pool:?} avoids \
         (avoidBuggyIPs)"
    )]
    IpNotAllowedBuggy {
        service: ServiceKey,
        ip: IpAddr,
        pool: String,
    },

    #[error("{ip} requested by {service} is in use by {holder} and does not share: {reason}")]
    IpInUse {
        service: ServiceKey,
        ip: IpAddr,
        holder: ServiceKey,
        reason: SharingReason,
    },

    #[error(
        "{service} requests two {family} addresses ({first} and {second}); at most one per \
         family is allowed"
    )]
    TwoIpsSameFamily {
        service: ServiceKey,
        family: Family,
        first: IpAddr,
        second: IpAddr,
    },

    #[error(
        "{service} requests {ip} but its IP families are {fams}",
        fams = family_list(.families)
    )]
    IpFamilyNotInService {
        service: ServiceKey,
        ip: IpAddr,
        families: Vec<Family>,
    },

    #[error(
        "{service} requires dual-stack but requests no {family} address (it requests {ips})",
        ips = ip_list(.requested)
    )]
    RequestedIpMissingFamily {
        service: ServiceKey,
        family: Family,
        requested: Vec<IpAddr>,
    },

    #[error(
        "{service} requests {first} (address pool {first_pool:?}) and {second} (address pool \
         {second_pool:?}); requested addresses must come from a single pool"
    )]
    RequestedIpsInDifferentPools {
        service: ServiceKey,
        first: IpAddr,
        first_pool: String,
        second: IpAddr,
        second_pool: String,
    },
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
        let key = |k: &Option<String>| k.as_ref().map_or("none".to_owned(), |k| format!("{k:?}"));
        match self {
            SharingReason::KeysDiffer {
                ours: None,
                theirs: None,
            } => f.write_str("neither service has a sharing key"),
            SharingReason::KeysDiffer { ours, theirs } => {
                write!(f, "sharing keys differ ({} vs {})", key(ours), key(theirs))
            }
            SharingReason::BackendsDiffer { ours, theirs } => {
                write!(f, "backends differ ({ours} vs {theirs})")
            }
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

fn lacking_family(pool: &Option<String>, family: Family) -> String {
    match pool {
        Some(p) => format!("address pool {p:?} has no {family} range"),
        None => format!("no address pool it may use has an {family} range"),
    }
}

fn ip_list(ips: &[IpAddr]) -> String {
    let names: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    names.join(", ")
}
