//! The real server the model in `ferrolb-shared` says a hashing scheduler (sh, mh) picks for
//! a client, so the lab can check each data path against it, not only for consistency.
//!
//! - userspace: the proxy runs [`Scheduler::pick`] itself, so the model answers directly;
//! - nftables: the kernel hashes the source with `jhash ... mod N seed` (nft_hash.c:
//!   `reciprocal_scale(jhash(addr, len, seed), N)`) and looks the bucket up in the table
//!   FerroLB rendered from the same model (sh buckets, the Maglev table). [`jhash`] is the
//!   kernel's `include/linux/jhash.h`, so the test computes the bucket the kernel will.

use ferrolb_shared::ipvs::maglev::{DEFAULT_TABLE_SIZE, MaglevBackend, MaglevTable};
use ferrolb_shared::ipvs::nft::JHASH_SEED;
use ferrolb_shared::ipvs::scheduler::{
    Dest, Flow, HASH_BUCKETS, Scheduler, SchedulerKind, hash_buckets,
};
use std::net::IpAddr;

/// The real servers of a virtual server as the model identifies them (`addr:port`, IPv6 in
/// brackets), in the order the table builder lists them (by address).
pub fn ids(addrs: &[IpAddr], port: u16) -> Vec<String> {
    let mut addrs = addrs.to_vec();
    addrs.sort();
    addrs
        .iter()
        .map(|a| match a {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        })
        .collect()
}

fn dests(ids: &[String]) -> Vec<Dest> {
    ids.iter()
        .map(|id| Dest {
            id: id.clone(),
            weight: 1,
            active: 0,
            inactive: 0,
        })
        .collect()
}

/// The id the userspace proxy picks for a new connection from `src` to `dst`.
pub fn userspace(kind: SchedulerKind, ids: &[String], src: IpAddr, dst: IpAddr) -> String {
    let d = dests(ids);
    let mut s = Scheduler::new(kind, &d).expect("scheduler");
    let i = s.pick(&Flow { src, dst }, &d).expect("a real server");
    ids[i].clone()
}

/// The id the kernel path picks for a new connection from `src` (sh and mh hash the source).
pub fn kernel(kind: SchedulerKind, ids: &[String], src: IpAddr) -> String {
    let key: Vec<u8> = match src {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let hash = jhash(&key, JHASH_SEED);
    match kind {
        SchedulerKind::Sh => {
            let buckets = hash_buckets(&dests(ids));
            ids[buckets[reciprocal_scale(hash, HASH_BUCKETS as u32) as usize]].clone()
        }
        SchedulerKind::Mh => {
            let backends: Vec<MaglevBackend> = ids
                .iter()
                .map(|id| MaglevBackend {
                    id: id.clone(),
                    weight: 1,
                })
                .collect();
            let table = MaglevTable::build(&backends, DEFAULT_TABLE_SIZE).expect("maglev");
            let slot = reciprocal_scale(hash, DEFAULT_TABLE_SIZE as u32) as usize;
            table.backends[table.entries[slot] as usize].id.clone()
        }
        other => panic!("{other} does not hash the source"),
    }
}

/// The kernel's `reciprocal_scale`: `val` scaled into `0..n` without a division.
fn reciprocal_scale(val: u32, n: u32) -> u32 {
    ((u64::from(val) * u64::from(n)) >> 32) as u32
}

/// The kernel's `jhash` (Bob Jenkins' lookup3, as in include/linux/jhash.h, little-endian
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
        mix(&mut a, &mut b, &mut c);
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
    final_mix(&mut a, &mut b, &mut c);
    c
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

#[test]
fn jhash_matches_lookup3() {
    // Bob Jenkins' lookup3.c driver prints these for hashlittle (= the kernel's jhash on
    // little-endian machines): "" → deadbeef with initval 0, "Four score and seven years
    // ago" (30 bytes) → 17770551 with initval 0 and cd628161 with initval 1.
    assert_eq!(jhash(b"", 0), 0xdead_beef);
    assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
    assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
}
