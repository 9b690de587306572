//! Byte-level tests of the codec against fixed vectors.
//!
//! The `LINUX_*` frames were captured from a Linux 6.18 kernel talking over a veth pair
//! (02:00:00:00:00:01 = 192.0.2.1 / 2001:db8::1 in one namespace, 02:00:00:00:00:02 =
//! 192.0.2.2 / 2001:db8::2 in the other), read with an AF_PACKET socket: real bytes with real
//! checksums, not output of this code. Frames Linux sent from the capturing side are 42 bytes
//! (a packet socket sees them before the NIC pads them).

mod answer;
mod arp;
mod errors;
mod mac;
mod ndp;
mod props;

use super::{FrameError, parse_frame};

/// Decodes hex, ignoring whitespace (which only groups the fields for the reader).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// `frame` zero-padded to the 60-byte Ethernet minimum, as our builders send it.
fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

/// Every strict prefix of `frame` must fail to parse with `Truncated`, never panic.
fn assert_every_prefix_truncated(frame: &[u8]) {
    for n in 0..frame.len() {
        match parse_frame(&frame[..n]) {
            Err(FrameError::Truncated { available, .. }) => assert!(available <= n),
            other => panic!("prefix of {n} bytes: expected Truncated, got {other:?}"),
        }
    }
}

/// who-has 192.0.2.2 tell 192.0.2.1.
const LINUX_ARP_REQUEST: &str = "
    ffffffffffff 020000000001 0806
    0001 0800 06 04 0001
    020000000001 c0000201
    000000000000 c0000202";

/// 192.0.2.2 is-at 02:00:00:00:00:02, the answer to `LINUX_ARP_REQUEST`.
const LINUX_ARP_REPLY: &str = "
    020000000001 020000000002 0806
    0001 0800 06 04 0002
    020000000002 c0000202
    020000000001 c0000201";

/// Linux's own gratuitous ARP (`arp_notify` on link up): request form, target MAC zero.
const LINUX_GRATUITOUS_ARP: &str = "
    ffffffffffff 020000000002 0806
    0001 0800 06 04 0001
    020000000002 c0000202
    000000000000 c0000202";

/// 2001:db8::1 asks for 2001:db8::2 at its solicited-node group, with its MAC in a source
/// link-layer option.
const LINUX_NS: &str = "
    3333ff000002 020000000001 86dd
    60000000 0020 3a ff
    20010db8000000000000000000000001
    ff0200000000000000000001ff000002
    87 00 1c27 00000000
    20010db8000000000000000000000002
    01 01 020000000001";

/// The answer to `LINUX_NS`: Solicited and Override, target link-layer option.
const LINUX_NA: &str = "
    020000000001 020000000002 86dd
    60000000 0020 3a ff
    20010db8000000000000000000000002
    20010db8000000000000000000000001
    88 00 8a71 60000000
    20010db8000000000000000000000002
    02 01 020000000002";

/// Duplicate address detection for 2001:db8::5: from ::, no source link-layer option, and a
/// nonce option (type 14, RFC 7527) that the parser must skip.
const LINUX_DAD_NS: &str = "
    3333ff000005 020000000001 86dd
    60000000 0020 3a ff
    00000000000000000000000000000000
    ff0200000000000000000001ff000005
    87 00 7476 00000000
    20010db8000000000000000000000005
    0e 01 5331e24894eb";

/// An MLDv2 report: IPv6 with a hop-by-hop header (Router Alert) in front of ICMPv6.
const LINUX_MLD_REPORT: &str = "
    333300000016 020000000001 86dd
    60000000 0024 00 01
    00000000000000000000000000000000
    ff020000000000000000000000000016
    3a 00 0502 0000 0100
    8f00 6f85 0000 0001 04000000 ff0200000000000000000001ff000005";

/// A router solicitation: ICMPv6, hop limit 255, but type 133.
const LINUX_ROUTER_SOLICITATION: &str = "
    333300000002 020000000002 86dd
    60000000 0010 3a ff
    fe80000000000000000000fffe000002
    ff020000000000000000000000000002
    85 00 7b2a 00000000
    01 01 020000000002";
