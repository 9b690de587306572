//! A fixed, keyless hash for scheduling decisions that every node (and both data paths) must
//! make identically: Maglev permutations, source and destination hashing. It must never
//! depend on a per-process random seed, so std's `RandomState` is out.

/// FNV-1a over `bytes`, then a murmur3 finalizer so that nearby inputs (consecutive IPs)
/// spread over the whole output range.
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// The murmur3 64-bit finalizer.
pub fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hash of an IP address (v4 or v6), for source and destination hashing.
pub fn hash_ip(seed: u64, ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(a) => hash64(seed, &a.octets()),
        std::net::IpAddr::V6(a) => hash64(seed, &a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_values_never_change() {
        // These pin the function: a change here would make nodes running different versions
        // disagree about every Maglev table and hash bucket.
        // (Computed independently, from the definition, in Python.)
        assert_eq!(hash64(0, b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(hash64(1, b"10.0.0.1:80"), 0x7d8f_bbfc_6baf_e1f9);
        assert_ne!(hash64(1, b"10.0.0.1:80"), hash64(2, b"10.0.0.1:80"));
        assert_ne!(hash64(1, b"10.0.0.1:80"), hash64(1, b"10.0.0.2:80"));
    }

    #[test]
    fn spreads_consecutive_addresses() {
        let buckets = 16u64;
        let mut counts = vec![0u32; buckets as usize];
        for i in 0..16_000u32 {
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            counts[(hash_ip(7, ip) % buckets) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
