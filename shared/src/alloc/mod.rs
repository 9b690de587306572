//! The LoadBalancer address allocator, with MetalLB's semantics made precise.
//!
//! Pure state: no I/O, no clock, no async. The controller feeds it the pool set
//! ([`Allocator::set_pools`]) and one [`ServiceRequest`] per Service ([`Allocator::assign`]),
//! and writes the resulting [`Assignment`] to the Service's status.
//!
//! # Rules
//!
//! * **Lowest free address.** A pool's ranges are walked in the order given, each from its
//!   lowest address; the first address that is free, or held only by services the newcomer may
//!   share with, is chosen. With `avoid_buggy_ips`, IPv4 addresses ending in `.0` or `.255`
//!   are never handed out and do not count towards capacity.
//! * **Pool choice.** A pool named by the request is the only candidate (`auto_assign: false`
//!   is fine then, but a `serviceAllocation` must still admit the service). Otherwise pools
//!   are tried in two groups: first the auto-assign pools whose `serviceAllocation` admits the
//!   service, by ascending priority (unset last) then name; then the auto-assign pools without
//!   one, by name. The second group is only looked at when no pool of the first can serve the
//!   request, family fallback included (see Families).
//! * **Requested IPs** must all lie in one pool the service may use (the named one, if any);
//!   that pool need not be auto-assign.
//! * **Sharing.** Several services may hold one address only if all carry the same non-empty
//!   sharing key and backend key, and no two expose the same protocol and port.
//! * **Families.** `families` is `spec.ipFamilies`; when empty it is `[V4, V6]` for the
//!   dual-stack policies and, for SingleStack, the family of the first requested (else
//!   previous) IP, else V4. SingleStack or one family: one address. RequireDualStack: one
//!   per family, from one pool. PreferDualStack: within a group, the first pool that can give
//!   both, else the first that can give the first family, else the first that can give the
//!   second, one address then (MetalLB's rule: the pool is chosen first, then it gives what it
//!   has). A PreferDualStack request naming a single IP is single-stack.
//! * **Keeping addresses.** `assign` keeps the current assignment, else reclaims
//!   `previous_ips`, when still valid by the rules for a requested address: same family set
//!   (for PreferDualStack a single address of either family also fits), equal to the requested
//!   IPs if any, all in one pool the service may use (the named one, if any), not buggy there,
//!   and shareable with every other holder. `autoAssign` is not consulted: it only governs new
//!   automatic allocations, so turning it off (or changing a priority, or adding selectors that
//!   still admit the service) never renumbers a Service that holds an address.
//! * **Errors.** An `Err` from `assign` leaves the service holding nothing, as MetalLB clears
//!   a Service's status when allocation fails. [`AllocError`] names the address, pool and
//!   holding service involved; it does not repeat the requesting service, which the caller
//!   knows.
//! * **Pool edits.** [`Allocator::set_pools`] re-checks every assignment against its stored
//!   request with the same keeping rules: an address now owned by another pool the service may
//!   use is re-homed there, an assignment that is no longer valid is dropped and its key
//!   returned for re-allocation.
//! * **Releases.** [`Allocator::releases`] counts the times a service left an address, so the
//!   caller knows when a service that found no address may find one now.
//! * **Restarts.** Replaying the same requests, with `previous_ips` from the Services' status
//!   and those Services first, into a fresh allocator with the same pools reproduces the same
//!   assignments.
//!
//! # Invalid input
//!
//! The config layer validates pools, but nothing here panics on bad input: mixed-family or
//! reversed ranges are ignored, of pools with the same name the first is kept, and an address
//! listed by several ranges belongs to the first pool by name (first range in list order)
//! and is absent from the others.
//!
//! # Cost
//!
//! Each range's free addresses are disjoint intervals in a `BTreeMap`, so nothing is stored
//! per address and a /64 or even a /0 works. Allocation and release are `O(log n)` in pool
//! size (amortized: buggy addresses are trimmed when they reach the front of a free interval).
//! Automatic pool choice finds the next pool with room in `O(log pools)`; a request with a
//! sharing key also looks at full pools (they may hold a shareable address), an `O(1)` check
//! each. Shared addresses are indexed per pool by sharing key, backend and the set of ports in
//! use, so finding the lowest one a newcomer may join costs `O(g log n)` for `g` distinct port
//! sets under its key, not a walk over every shared address. Capacities saturate at
//! `u128::MAX`: a full IPv6 /0 holds 2^128 addresses, one more than `u128` can count.

mod allocator;
mod entries;
mod error;
mod fresh;
mod holders;
mod kept;
mod pool;
mod range_set;
mod request;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use allocator::Allocator;
pub use error::{AllocError, FamilyNeed, PoolMismatch, SharingReason, SkipReason, SkippedPool};
pub use request::{
    Assignment, BackendKey, Family, FamilyPolicy, IpRange, PoolDef, PoolStats, Protocol,
    ServiceAllocation, ServiceKey, ServiceRequest,
};
