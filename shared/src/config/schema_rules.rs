//! The per-object rules of the CRD schemas, as CEL (`x-kubernetes-validations`).
//!
//! The API server evaluates them on every create and update, so `kubectl apply` refuses an
//! obviously bad object at once, with the field and the reason, and no admission webhook (and
//! no certificate) is needed. They repeat a subset of `validate.rs`: what one object can be
//! checked for alone. Everything that needs other objects (overlapping pools, references to
//! pools, peers or BFD profiles) is still found by the components and reported in their
//! `ConfigurationState`. Written with Kubernetes' CEL libraries only (`isIP`, `isCIDR`, `ip`,
//! the strings extension, durations); each list they walk has a `maxItems` and each string a
//! `maxLength`, which keeps the API server's cost estimate within its budget.

/// Each pool address: a CIDR, one IP address, or a range of two addresses of one family.
/// (That a range's start is not after its end needs address ordering, which Kubernetes' IP
/// library lacks: the controller's validation reports it.)
pub const POOL_ADDRESSES: &str = "self.all(a, isCIDR(a.trim()) || isIP(a.trim()) || \
    (a.split('-').size() == 2 && isIP(a.split('-')[0].trim()) && isIP(a.split('-')[1].trim()) \
    && ip(a.split('-')[0].trim()).family() == ip(a.split('-')[1].trim()).family()))";
pub const POOL_ADDRESSES_MESSAGE: &str = "every address must be a CIDR (10.0.0.0/24), one IP \
    address, or a range of two addresses of one family (10.0.0.10-10.0.0.20)";

/// An IP address, or empty (a peer reached over `interface` has no address).
pub const IP_OR_EMPTY: &str = "self == '' || isIP(self)";
pub const IP: &str = "isIP(self)";
pub const IPV4: &str = "isIP(self) && ip(self).family() == 4";

/// A Go duration (`90s`, `1m30s`, `0`), as the duration fields' OpenAPI `pattern`. The CEL
/// rules on those fields only look at values that match it (`duration()` of anything else is
/// an evaluation error, a worse message than the pattern's).
pub const DURATION_PATTERN: &str = "^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

/// RFC 4271: a hold time is 0 (no keepalives) or at least 3 seconds.
pub const HOLD_TIME: &str = "!self.matches('^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') \
    || self == '0' || duration(self) == duration('0s') || duration(self) >= duration('3s')";
pub const HOLD_TIME_MESSAGE: &str = "holdTime must be 0 (no keepalives) or at least 3s (RFC 4271)";
pub const POSITIVE_DURATION: &str = "!self.matches('^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') \
    || (self != '0' && duration(self) > duration('0s'))";

pub const PEER_ASN_XOR_DYNAMIC: &str = "has(self.peerASN) != has(self.dynamicASN)";
pub const PEER_ASN_XOR_DYNAMIC_MESSAGE: &str = "give exactly one of peerASN and dynamicASN";
pub const PASSWORD_XOR_SECRET: &str = "!(has(self.password) && has(self.passwordSecret))";
pub const PASSWORD_XOR_SECRET_MESSAGE: &str =
    "password and passwordSecret are mutually exclusive: give one";
pub const PEER_ADDRESS_OR_INTERFACE: &str = "self.peerAddress != '' || has(self.interface)";
pub const PEER_ADDRESS_OR_INTERFACE_MESSAGE: &str =
    "missing peerAddress (or interface for unnumbered BGP)";
/// The keepalive time is never above the hold time (90 s when unset).
/// (Values that are not durations, or `0`, are left to the fields' own checks.)
pub const KEEPALIVE_WITHIN_HOLD: &str = "!has(self.keepaliveTime) || self.keepaliveTime == '0' \
    || !self.keepaliveTime.matches('^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') \
    || (has(self.holdTime) && (self.holdTime == '0' \
        || !self.holdTime.matches('^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$'))) \
    || duration(self.keepaliveTime) <= (has(self.holdTime) ? duration(self.holdTime) : duration('90s'))";
pub const KEEPALIVE_WITHIN_HOLD_MESSAGE: &str = "keepaliveTime must not be longer than holdTime";
/// Source and peer address of one family, when both are addresses.
pub const SAME_FAMILY: &str = "!has(self.sourceAddress) || !isIP(self.sourceAddress) || \
    !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()";
pub const SAME_FAMILY_MESSAGE: &str = "sourceAddress and peerAddress must be of the same IP family";
