//! Every error path, each from a fixed frame with one thing wrong.

use std::net::Ipv6Addr;

use super::{
    LINUX_ARP_REQUEST, LINUX_MLD_REPORT, LINUX_NA, LINUX_NS, LINUX_ROUTER_SOLICITATION, hex,
};
use crate::l2::packet::{FrameError, Layer, Skipped, icmpv6_checksum, parse_frame};

/// Offsets in an untagged IPv6 frame.
const PAYLOAD_LEN: usize = 18;
const NEXT_HEADER: usize = 20;
const HOP_LIMIT: usize = 21;
const SOURCE: usize = 22;
const DESTINATION: usize = 38;
const ICMP: usize = 54;
const TARGET: usize = ICMP + 8;
const OPTIONS: usize = ICMP + 24;

/// `fixture` after `edit`, with the IPv6 payload length and the ICMPv6 checksum made
/// consistent again, so exactly the edited rule is broken.
fn ndp_with(fixture: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = hex(fixture);
    edit(&mut frame);
    let len = u16::try_from(frame.len() - ICMP).unwrap();
    frame[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&len.to_be_bytes());
    let address = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&frame[at..at + 16]).unwrap());
    let checksum = icmpv6_checksum(address(SOURCE), address(DESTINATION), &frame[ICMP..]);
    frame[ICMP + 2..ICMP + 4].copy_from_slice(&checksum.to_be_bytes());
    frame
}

fn arp_with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = hex(LINUX_ARP_REQUEST);
    edit(&mut frame);
    frame
}

fn err(frame: &[u8]) -> FrameError {
    parse_frame(frame).unwrap_err()
}

#[test]
fn other_ethertypes_are_not_for_us() {
    let ipv4 = hex("ffffffffffff 020000000001 0800 4500");
    assert_eq!(
        err(&ipv4),
        FrameError::NotArpOrNdp(Skipped::EtherType(0x0800))
    );
    assert!(err(&ipv4).is_not_for_us());
    // An 802.3 length field and an 802.1ad outer tag.
    let llc = hex("0180c2000000 020000000001 0026 4242");
    assert_eq!(
        err(&llc),
        FrameError::NotArpOrNdp(Skipped::EtherType(0x0026))
    );
    let qinq = hex("ffffffffffff 020000000001 88a8 0007 8100 0008 0806");
    assert_eq!(
        err(&qinq),
        FrameError::NotArpOrNdp(Skipped::EtherType(0x88a8))
    );
    // Only one 802.1Q tag is unwrapped.
    let double = hex("ffffffffffff 020000000001 8100 0007 8100 0008 0806");
    assert_eq!(
        err(&double),
        FrameError::NotArpOrNdp(Skipped::EtherType(0x8100))
    );
}

#[test]
fn other_ipv6_is_not_for_us() {
    assert_eq!(
        err(&hex(LINUX_MLD_REPORT)),
        FrameError::NotArpOrNdp(Skipped::Ipv6ExtensionHeader(0))
    );
    assert_eq!(
        err(&hex(LINUX_ROUTER_SOLICITATION)),
        FrameError::NotArpOrNdp(Skipped::Icmpv6Type(133))
    );
    let mut udp = hex(LINUX_NS);
    udp[NEXT_HEADER] = 17;
    assert_eq!(
        err(&udp),
        FrameError::NotArpOrNdp(Skipped::Ipv6NextHeader(17))
    );
    let mut fragment = hex(LINUX_NS);
    fragment[NEXT_HEADER] = 44;
    assert_eq!(
        err(&fragment),
        FrameError::NotArpOrNdp(Skipped::Ipv6ExtensionHeader(44))
    );
    for e in [err(&udp), err(&fragment), err(&hex(LINUX_MLD_REPORT))] {
        assert!(e.is_not_for_us());
    }
}

#[test]
fn short_headers() {
    assert_eq!(
        err(&[]),
        FrameError::Truncated {
            layer: Layer::Ethernet,
            needed: 14,
            available: 0
        }
    );
    let tag_cut = hex("ffffffffffff 020000000001 8100 00");
    assert_eq!(
        err(&tag_cut),
        FrameError::Truncated {
            layer: Layer::Vlan,
            needed: 4,
            available: 1
        }
    );
    let arp_cut = &hex(LINUX_ARP_REQUEST)[..41];
    assert_eq!(
        err(arp_cut),
        FrameError::Truncated {
            layer: Layer::Arp,
            needed: 28,
            available: 27
        }
    );
    let ipv6_cut = &hex(LINUX_NS)[..20];
    assert_eq!(
        err(ipv6_cut),
        FrameError::Truncated {
            layer: Layer::Ipv6,
            needed: 40,
            available: 6
        }
    );
    assert!(!err(ipv6_cut).is_not_for_us());
}

#[test]
fn ipv6_payload_longer_than_the_frame() {
    let mut frame = hex(LINUX_NS);
    frame[PAYLOAD_LEN + 1] = 0x21;
    assert_eq!(
        err(&frame),
        FrameError::Truncated {
            layer: Layer::Ipv6,
            needed: 73,
            available: 72
        }
    );
}

#[test]
fn icmpv6_shorter_than_a_solicitation() {
    let frame = ndp_with(LINUX_NS, |f| f.truncate(ICMP + 20));
    assert_eq!(
        err(&frame),
        FrameError::Truncated {
            layer: Layer::Icmpv6,
            needed: 24,
            available: 20
        }
    );
}

#[test]
fn arp_for_other_hardware_protocols_or_lengths() {
    let ieee802 = arp_with(|f| f[14..16].copy_from_slice(&[0, 6]));
    assert_eq!(err(&ieee802), FrameError::ArpHardwareType(6));
    let ipv6 = arp_with(|f| f[16..18].copy_from_slice(&[0x86, 0xdd]));
    assert_eq!(err(&ipv6), FrameError::ArpProtocolType(0x86dd));
    let hlen = arp_with(|f| f[18] = 8);
    assert_eq!(
        err(&hlen),
        FrameError::ArpAddressLengths { hlen: 8, plen: 4 }
    );
    let plen = arp_with(|f| f[19] = 16);
    assert_eq!(
        err(&plen),
        FrameError::ArpAddressLengths { hlen: 6, plen: 16 }
    );
    for op in [0u8, 3, 4, 8] {
        let rarp = arp_with(|f| f[21] = op);
        assert_eq!(err(&rarp), FrameError::ArpOperation(op.into()));
    }
    assert!(!err(&ieee802).is_not_for_us());
}

#[test]
fn ipv6_version() {
    let mut frame = hex(LINUX_NS);
    frame[14] = 0x45;
    assert_eq!(err(&frame), FrameError::Ipv6Version(4));
}

#[test]
fn hop_limit_must_be_255() {
    for hops in [0u8, 1, 64, 254] {
        let mut frame = hex(LINUX_NS);
        frame[HOP_LIMIT] = hops;
        assert_eq!(err(&frame), FrameError::HopLimit(hops));
    }
}

#[test]
fn bad_checksum() {
    let mut frame = hex(LINUX_NS);
    frame[TARGET + 15] = 3;
    let FrameError::Checksum { received, computed } = err(&frame) else {
        panic!("expected a checksum error");
    };
    assert_eq!(received, 0x1c27);
    assert_eq!(computed, 0x1c26);
    // The checksum covers the pseudo-header too: the same message to another address.
    let mut frame = hex(LINUX_NA);
    frame[DESTINATION + 15] = 9;
    assert!(matches!(
        err(&frame),
        FrameError::Checksum {
            received: 0x8a71,
            ..
        }
    ));
}

#[test]
fn code_must_be_zero() {
    let frame = ndp_with(LINUX_NS, |f| f[ICMP + 1] = 1);
    assert_eq!(
        err(&frame),
        FrameError::Icmpv6Code {
            icmp_type: 135,
            code: 1
        }
    );
}

#[test]
fn zero_length_option_is_an_error_not_a_loop() {
    let frame = ndp_with(LINUX_NS, |f| f[OPTIONS + 1] = 0);
    assert_eq!(
        err(&frame),
        FrameError::ZeroLengthOption {
            option_type: 1,
            offset: 24
        }
    );
    // Also for an option we would otherwise skip, after a valid one.
    let frame = ndp_with(LINUX_NA, |f| f.extend_from_slice(&hex("0e00 000000000000")));
    assert_eq!(
        err(&frame),
        FrameError::ZeroLengthOption {
            option_type: 14,
            offset: 32
        }
    );
}

#[test]
fn link_layer_option_must_be_eight_bytes() {
    let frame = ndp_with(LINUX_NS, |f| {
        f[OPTIONS + 1] = 2;
        f.extend_from_slice(&[0; 8]);
    });
    assert_eq!(
        err(&frame),
        FrameError::LinkLayerOptionLength {
            option_type: 1,
            length: 2
        }
    );
}

#[test]
fn options_running_past_the_message() {
    let frame = ndp_with(LINUX_NS, |f| f[OPTIONS + 1] = 2);
    assert_eq!(
        err(&frame),
        FrameError::Truncated {
            layer: Layer::NdpOption,
            needed: 16,
            available: 8
        }
    );
    // One stray byte: not even an option header (and an odd-length checksum).
    let frame = ndp_with(LINUX_NA, |f| f.push(2));
    assert_eq!(
        err(&frame),
        FrameError::Truncated {
            layer: Layer::NdpOption,
            needed: 2,
            available: 1
        }
    );
}

#[test]
fn multicast_target_or_source() {
    let all_nodes = hex("ff020000000000000000000000000001");
    let frame = ndp_with(LINUX_NS, |f| {
        f[TARGET..TARGET + 16].copy_from_slice(&all_nodes)
    });
    assert_eq!(
        err(&frame),
        FrameError::MulticastTarget("ff02::1".parse().unwrap())
    );
    let frame = ndp_with(LINUX_NS, |f| {
        f[SOURCE..SOURCE + 16].copy_from_slice(&all_nodes)
    });
    assert_eq!(
        err(&frame),
        FrameError::MulticastSource("ff02::1".parse().unwrap())
    );
}

#[test]
fn dad_rules() {
    // From :: to all nodes instead of the solicited-node group.
    let frame = ndp_with(LINUX_NS, |f| {
        f[SOURCE..SOURCE + 16].fill(0);
        f[DESTINATION..DESTINATION + 16].copy_from_slice(&hex("ff020000000000000000000000000001"));
        f.truncate(OPTIONS);
    });
    assert_eq!(
        err(&frame),
        FrameError::DadNotToSolicitedNode("ff02::1".parse().unwrap())
    );
    // From :: with a source link-layer option.
    let frame = ndp_with(LINUX_NS, |f| f[SOURCE..SOURCE + 16].fill(0));
    assert_eq!(err(&frame), FrameError::DadWithSourceLinkLayer);
}

#[test]
fn solicited_advertisement_to_multicast() {
    let frame = ndp_with(LINUX_NA, |f| {
        f[DESTINATION..DESTINATION + 16].copy_from_slice(&hex("ff020000000000000000000000000001"));
    });
    assert_eq!(
        err(&frame),
        FrameError::SolicitedToMulticast("ff02::1".parse().unwrap())
    );
}

#[test]
fn messages_name_the_offending_value() {
    let cases = [
        (FrameError::HopLimit(64), "64"),
        (FrameError::ArpProtocolType(0x86dd), "0x86dd"),
        (
            FrameError::Checksum {
                received: 0x1c27,
                computed: 0x1c26,
            },
            "0x1c27",
        ),
        (
            FrameError::ZeroLengthOption {
                option_type: 14,
                offset: 32,
            },
            "offset 32",
        ),
        (
            FrameError::NotArpOrNdp(Skipped::EtherType(0x0800)),
            "ethertype 0x0800",
        ),
        (
            FrameError::NotArpOrNdp(Skipped::Icmpv6Type(133)),
            "ICMPv6 type 133",
        ),
        (
            FrameError::Truncated {
                layer: Layer::NdpOption,
                needed: 16,
                available: 8,
            },
            "NDP option truncated: need 16 bytes, have 8",
        ),
        (
            FrameError::MulticastTarget("ff02::1".parse().unwrap()),
            "ff02::1",
        ),
    ];
    for (error, needle) in cases {
        assert!(error.to_string().contains(needle), "{error} lacks {needle}");
    }
}
