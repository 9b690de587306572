//! Pool address syntax: a CIDR (`10.0.0.0/24`, `2001:db8::/64`), an inclusive range
//! (`10.0.0.10-10.0.0.20`) or a single address. MetalLB accepts CIDRs with host bits set and
//! masks them; so do we, so that its manifests load unchanged.

use crate::alloc::IpRange;
use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use std::net::IpAddr;

/// Parse one `addresses` entry into an inclusive range.
pub fn parse_pool_address(text: &str) -> Result<IpRange, String> {
    let t = text.trim();
    if let Some((a, b)) = t.split_once('-') {
        let start: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: range start {a:?} is not an IP address"))?;
        let end: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: range end {b:?} is not an IP address"))?;
        if start.is_ipv4() != end.is_ipv4() {
            return Err(format!("{text:?}: range mixes IPv4 and IPv6"));
        }
        if start > end {
            return Err(format!(
                "{text:?}: range start {start} is after its end {end}"
            ));
        }
        return Ok(IpRange { start, end });
    }
    if t.contains('/') {
        let net: IpNet = t
            .parse()
            .map_err(|_| format!("{text:?} is not a valid CIDR"))?;
        let net = net.trunc();
        return Ok(IpRange {
            start: net.network(),
            end: net.broadcast(),
        });
    }
    let ip: IpAddr = t.parse().map_err(|_| {
        format!("{text:?} is neither a CIDR (a.b.c.d/n), a range (first-last) nor an IP address")
    })?;
    Ok(IpRange { start: ip, end: ip })
}

/// The fewest CIDRs that exactly cover `range` (used to check BGP aggregation lengths).
pub fn covering_cidrs(range: &IpRange) -> Vec<IpNet> {
    match (range.start, range.end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => Ipv4Subnets::new(s, e, 0).map(IpNet::V4).collect(),
        (IpAddr::V6(s), IpAddr::V6(e)) => Ipv6Subnets::new(s, e, 0).map(IpNet::V6).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: &str, b: &str) -> IpRange {
        IpRange {
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse_pool_address("10.0.0.0/24"),
            Ok(r("10.0.0.0", "10.0.0.255"))
        );
        assert_eq!(
            parse_pool_address("10.0.0.7/24"),
            Ok(r("10.0.0.0", "10.0.0.255"))
        );
        assert_eq!(
            parse_pool_address("10.0.0.10 - 10.0.0.20"),
            Ok(r("10.0.0.10", "10.0.0.20"))
        );
        assert_eq!(
            parse_pool_address("2001:db8::/120"),
            Ok(r("2001:db8::", "2001:db8::ff"))
        );
        assert_eq!(
            parse_pool_address("2001:db8::1-2001:db8::5"),
            Ok(r("2001:db8::1", "2001:db8::5"))
        );
        assert_eq!(
            parse_pool_address("192.0.2.1"),
            Ok(r("192.0.2.1", "192.0.2.1"))
        );
    }

    #[test]
    fn refuses_bad_forms() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.300/24",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "x-y",
            "pool",
        ] {
            assert!(parse_pool_address(bad).is_err(), "{bad}");
        }
        assert!(
            parse_pool_address("10.0.0.9-10.0.0.1")
                .unwrap_err()
                .contains("after its end")
        );
    }

    #[test]
    fn covering_cidrs_are_minimal() {
        let c: Vec<String> = covering_cidrs(&r("10.0.0.1", "10.0.0.5"))
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(c, ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31"]);
        assert_eq!(covering_cidrs(&r("10.0.0.0", "10.0.0.255")).len(), 1);
    }
}
