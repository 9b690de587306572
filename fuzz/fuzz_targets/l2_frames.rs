//! Any bytes given to the layer 2 frame parser, as a packet socket would: never a panic.
//! Whatever parses must re-encode to the same frame, and is answered as by a node that owns
//! every address; every reply we build must itself parse (we never send a frame our own
//! rules call malformed).
#![no_main]

use std::net::Ipv6Addr;

use ferrolb_shared::l2::packet::{Answer, MacAddr, answer, icmpv6_checksum, parse_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    // A random mutation of an NDP frame almost never keeps its checksum valid, which would
    // hide everything behind the checksum check from the fuzzer; try a repaired copy too.
    if let Some(repaired) = with_repaired_checksum(data) {
        check(&repaired);
    }
});

fn check(data: &[u8]) {
    let Ok(frame) = parse_frame(data) else {
        return;
    };
    assert_eq!(parse_frame(&frame.to_bytes()), Ok(frame));
    let us = MacAddr([0x02, 0xfe, 0x00, 0x00, 0x00, 0x01]);
    if let Answer::Reply(reply) = answer(&frame, us, |_| true)
        && let Err(e) = parse_frame(&reply)
    {
        panic!("reply {reply:02x?} to {frame:?} does not parse: {e}");
    }
}

/// `data` with the ICMPv6 checksum recomputed, if it looks like (optionally tagged) IPv6
/// with a payload of at least 4 bytes.
fn with_repaired_checksum(data: &[u8]) -> Option<Vec<u8>> {
    let ip_start = match data.get(12..14)? {
        [0x86, 0xdd] => 14,
        [0x81, 0x00] if data.get(16..18)? == [0x86, 0xdd] => 18,
        _ => return None,
    };
    let header = data.get(ip_start..ip_start + 40)?;
    let address = |at: usize| -> Option<Ipv6Addr> {
        Some(Ipv6Addr::from(
            <[u8; 16]>::try_from(header.get(at..at + 16)?).ok()?,
        ))
    };
    let len = usize::from(u16::from_be_bytes(header.get(4..6)?.try_into().ok()?));
    let icmp_start = ip_start + 40;
    let message = data.get(icmp_start..icmp_start + len)?;
    let checksum = icmpv6_checksum(address(8)?, address(24)?, message);
    let mut repaired = data.to_vec();
    repaired
        .get_mut(icmp_start + 2..icmp_start + 4)?
        .copy_from_slice(&checksum.to_be_bytes());
    Some(repaired)
}
