//! The classic BPF program attached to every announcer packet socket.
//!
//! A packet socket bound with `ETH_P_ALL` would otherwise copy every frame of the interface
//! to userspace. The kernel runs this program first and queues only:
//! - ARP (ethertype 0x0806),
//! - IPv6 (0x86dd) whose next header (byte 20) is ICMPv6 (58) with type (byte 54) 135, a
//!   neighbor solicitation,
//!
//! and of those only frames that were received (not our own or the host's outgoing frames,
//! `PACKET_OUTGOING`), without an out-of-band 802.1Q tag. The kernel strips VLAN tags before
//! packet taps see a frame, so a tagged question reaches the parent interface's socket looking
//! untagged; answering it there would put the reply on the wrong VLAN. Such questions belong
//! to the VLAN interface (e.g. `eth0.100`), which gets its own socket if it is selected.
//!
//! Inline-tagged frames (ethertype 0x8100) only appear for stacked tags (QinQ) and are dropped
//! too. Everything the filter passes is still parsed and validated in full by the codec.

use socket2::SockFilter;

/// One classic BPF instruction (`struct sock_filter`), kept in our own type so the tests can
/// interpret the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/filter.h, linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_JEQ: u16 = 0x10;
const BPF_K: u16 = 0x00;

pub(super) const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
pub(super) const LD_H_ABS: u16 = BPF_LD | BPF_H | BPF_ABS;
pub(super) const LD_B_ABS: u16 = BPF_LD | BPF_B | BPF_ABS;
pub(super) const JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
pub(super) const RET_K: u16 = BPF_RET | BPF_K;

/// Ancillary data lives at negative offsets (`SKF_AD_OFF` = -0x1000).
pub(super) const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
/// `skb->pkt_type`.
pub(super) const SKF_AD_PKTTYPE: u32 = 4;
/// Whether the skb carries an out-of-band VLAN tag.
pub(super) const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;
/// `PACKET_OUTGOING`: a frame this host sends.
pub(super) const PACKET_OUTGOING: u32 = 4;

/// Bytes of an accepted frame to queue: all of it (the socket's read buffer is the limit).
const ACCEPT: u32 = 0x0004_0000;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The program. Jump offsets count instructions skipped after the jump.
pub(super) const PROGRAM: [Insn; 13] = [
    /* 0 */ insn(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE),
    /* 1 */ insn(JEQ_K, 10, 0, PACKET_OUTGOING), // outgoing → 12 (drop)
    /* 2 */ insn(LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT),
    /* 3 */ insn(JEQ_K, 0, 8, 0), // tag present → 12 (drop)
    /* 4 */ insn(LD_H_ABS, 0, 0, 12), // ethertype
    /* 5 */ insn(JEQ_K, 5, 0, 0x0806), // ARP → 11 (accept)
    /* 6 */ insn(JEQ_K, 0, 5, 0x86dd), // not IPv6 → 12 (drop)
    /* 7 */ insn(LD_B_ABS, 0, 0, 20), // IPv6 next header
    /* 8 */ insn(JEQ_K, 0, 3, 58), // not ICMPv6 → 12 (drop)
    /* 9 */ insn(LD_B_ABS, 0, 0, 54), // ICMPv6 type
    /* 10 */ insn(JEQ_K, 0, 1, 135), // not a solicitation → 12 (drop)
    /* 11 */ insn(RET_K, 0, 0, ACCEPT),
    /* 12 */ insn(RET_K, 0, 0, 0),
];

/// [`PROGRAM`] in socket2's form, for `Socket::attach_filter`.
pub(super) fn program() -> Vec<SockFilter> {
    PROGRAM
        .iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_shared::l2::packet::{
        ArpOperation, ArpPacket, Frame, MacAddr, Message, NeighborSolicitation, gratuitous_arp,
        solicited_node_multicast, unsolicited_neighbor_advertisement,
    };
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// What the kernel knows about a frame besides its bytes.
    #[derive(Clone, Copy, Default)]
    struct Meta {
        pkttype: u32,
        vlan_tag_present: bool,
    }

    /// A classic BPF interpreter for the instructions [`PROGRAM`] uses, with the kernel's
    /// semantics: a load past the end of the frame ends the program with 0 (drop).
    fn run(program: &[Insn], frame: &[u8], meta: Meta) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = program[pc];
            pc += 1;
            match i.code {
                LD_W_ABS | LD_H_ABS | LD_B_ABS if i.k >= SKF_AD_OFF => {
                    a = match i.k - SKF_AD_OFF {
                        SKF_AD_PKTTYPE => meta.pkttype,
                        SKF_AD_VLAN_TAG_PRESENT => u32::from(meta.vlan_tag_present),
                        other => panic!("ancillary load {other} not modelled"),
                    };
                }
                LD_W_ABS | LD_H_ABS | LD_B_ABS => {
                    let size = match i.code {
                        LD_W_ABS => 4,
                        LD_H_ABS => 2,
                        _ => 1,
                    };
                    let at = i.k as usize;
                    let Some(bytes) = frame.get(at..at + size) else {
                        return 0;
                    };
                    a = bytes.iter().fold(0, |acc, b| (acc << 8) | u32::from(*b));
                }
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("opcode {other:#x} not modelled"),
            }
        }
    }

    fn accepts(frame: &[u8], meta: Meta) -> bool {
        run(&PROGRAM, frame, meta) != 0
    }

    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const TARGET6: Ipv6Addr = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x200);

    fn arp_request() -> Vec<u8> {
        Frame {
            destination: MacAddr::BROADCAST,
            source: THEM,
            vlan: None,
            message: Message::Arp(ArpPacket {
                operation: ArpOperation::Request,
                sender_mac: THEM,
                sender_ip: Ipv4Addr::new(10, 99, 0, 2),
                target_mac: MacAddr::ZERO,
                target_ip: Ipv4Addr::new(10, 99, 0, 200),
            }),
        }
        .to_bytes()
    }

    fn solicitation() -> Vec<u8> {
        let group = solicited_node_multicast(TARGET6);
        Frame {
            destination: MacAddr([0x33, 0x33, 0xff, 0, 2, 0]),
            source: THEM,
            vlan: None,
            message: Message::NeighborSolicitation(NeighborSolicitation {
                source: Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 2),
                destination: group,
                target: TARGET6,
                source_mac: Some(THEM),
            }),
        }
        .to_bytes()
    }

    #[test]
    fn accepts_arp_and_neighbor_solicitations() {
        assert!(accepts(&arp_request(), Meta::default()));
        assert!(accepts(
            &gratuitous_arp(THEM, Ipv4Addr::new(10, 0, 0, 1)),
            Meta::default()
        ));
        assert!(accepts(&solicitation(), Meta::default()));
        // Multicast and other-host frames (promiscuous interfaces) too: the codec decides.
        assert!(accepts(
            &arp_request(),
            Meta {
                pkttype: 2,
                ..Meta::default()
            }
        ));
        assert!(accepts(
            &arp_request(),
            Meta {
                pkttype: 3,
                ..Meta::default()
            }
        ));
    }

    #[test]
    fn drops_everything_else() {
        let na = unsolicited_neighbor_advertisement(THEM, TARGET6);
        assert!(!accepts(&na, Meta::default()));
        let mut ipv4 = arp_request();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert!(!accepts(&ipv4, Meta::default()));
        let mut udp6 = solicitation();
        udp6[20] = 17;
        assert!(!accepts(&udp6, Meta::default()));
        // A hop-by-hop header (MLD reports) before ICMPv6: not a solicitation.
        let mut hop_by_hop = solicitation();
        hop_by_hop[20] = 0;
        assert!(!accepts(&hop_by_hop, Meta::default()));
        let mut echo = solicitation();
        echo[54] = 128;
        assert!(!accepts(&echo, Meta::default()));
        let mut tagged_inline = arp_request();
        tagged_inline[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(!accepts(&tagged_inline, Meta::default()));
    }

    #[test]
    fn drops_outgoing_and_vlan_tagged_frames() {
        let outgoing = Meta {
            pkttype: PACKET_OUTGOING,
            ..Meta::default()
        };
        assert!(!accepts(&arp_request(), outgoing));
        let tagged = Meta {
            vlan_tag_present: true,
            ..Meta::default()
        };
        assert!(!accepts(&arp_request(), tagged));
        assert!(!accepts(&solicitation(), tagged));
    }

    #[test]
    fn drops_short_frames_without_reading_past_them() {
        assert!(!accepts(&[], Meta::default()));
        let ns = solicitation();
        assert!(!accepts(&ns[..54], Meta::default()));
        assert!(accepts(&ns[..55], Meta::default())); // the codec rejects it later
        assert!(!accepts(&arp_request()[..13], Meta::default()));
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        for (pc, i) in PROGRAM.iter().enumerate() {
            if i.code == JEQ_K {
                for offset in [i.jt, i.jf] {
                    assert!(pc + 1 + usize::from(offset) < PROGRAM.len(), "at {pc}");
                }
            }
        }
        assert_eq!(PROGRAM.last().map(|i| i.code), Some(RET_K));
        assert_eq!(program().len(), PROGRAM.len());
    }
}
