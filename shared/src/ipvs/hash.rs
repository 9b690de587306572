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

/// Seed of the hashing schedulers' `jhash`: fixed, so every node agrees.
pub const JHASH_SEED: u32 = 0x4665_4c42; // "FeLB"

/// The bucket in `0..n` that nftables' `jhash <addr> mod n seed JHASH_SEED` gives for `ip`
/// (nft_hash.c: `reciprocal_scale(jhash(addr, len, seed), n)` over the address bytes in
/// network order). The userspace proxy hashes with this too, so for sh, dh and mh both data
/// paths send a client to the same real server.
pub fn kernel_bucket(ip: std::net::IpAddr, n: u32) -> usize {
    let hash = match ip {
        std::net::IpAddr::V4(a) => jhash(&a.octets(), JHASH_SEED),
        std::net::IpAddr::V6(a) => jhash(&a.octets(), JHASH_SEED),
    };
    reciprocal_scale(hash, n) as usize
}

/// The kernel's `reciprocal_scale`: `val` scaled into `0..n` without a division.
pub fn reciprocal_scale(val: u32, n: u32) -> u32 {
    ((u64::from(val) * u64::from(n)) >> 32) as u32
}

/// The kernel's `jhash` (Bob Jenkins' lookup3, include/linux/jhash.h, with little-endian
/// words as on x86 and arm64).
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let start = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut a, mut b, mut c) = (start, start, start);
    let word = |k: &[u8]| {
        let mut w = [0u8; 4];
        w[..k.len()].copy_from_slice(k);
        u32::from_le_bytes(w)
    };
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        jhash_mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    // The tail: up to three partial words, zero-padded (the kernel's switch falls through).
    a = a.wrapping_add(word(&k[..k.len().min(4)]));
    if k.len() > 4 {
        b = b.wrapping_add(word(&k[4..k.len().min(8)]));
    }
    if k.len() > 8 {
        c = c.wrapping_add(word(&k[8..]));
    }
    jhash_final(&mut a, &mut b, &mut c);
    c
}

fn jhash_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    for (x, y, z, r) in [
        (0, 1, 2, 4),
        (1, 2, 0, 6),
        (2, 0, 1, 8),
        (0, 1, 2, 16),
        (1, 2, 0, 19),
        (2, 0, 1, 4),
    ] {
        let mut v = [*a, *b, *c];
        // (x, y, z, r): x -= z; x ^= rol(z, r); z += y   (lookup3's mix, line by line)
        v[x] = v[x].wrapping_sub(v[z]) ^ v[z].rotate_left(r);
        v[z] = v[z].wrapping_add(v[y]);
        [*a, *b, *c] = v;
    }
}

fn jhash_final(a: &mut u32, b: &mut u32, c: &mut u32) {
    for (x, y, r) in [
        (2, 1, 14),
        (0, 2, 11),
        (1, 0, 25),
        (2, 1, 16),
        (0, 2, 4),
        (1, 0, 14),
        (2, 1, 24),
    ] {
        let mut v = [*a, *b, *c];
        // (x, y, r): x ^= y; x -= rol(y, r)   (lookup3's final, line by line)
        v[x] ^= v[y];
        v[x] = v[x].wrapping_sub(v[y].rotate_left(r));
        [*a, *b, *c] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jhash_matches_lookup3() {
        // Bob Jenkins' lookup3.c driver prints these for hashlittle (= the kernel's jhash on
        // little-endian machines): "" → deadbeef with initval 0, "Four score and seven years
        // ago" (30 bytes) → 17770551 with initval 0 and cd628161 with initval 1.
        assert_eq!(jhash(b"", 0), 0xdead_beef);
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
    }

    #[test]
    fn kernel_buckets_stay_in_range_and_spread() {
        let mut seen = [0u32; 16];
        for i in 0..1600u32 {
            let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            seen[kernel_bucket(ip, 16)] += 1;
        }
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
        assert_eq!(kernel_bucket("fd00::1".parse().unwrap(), 1), 0);
    }

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
