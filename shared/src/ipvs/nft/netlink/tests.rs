use super::*;
use proptest::prelude::*;

/// The messages of a batch: (type, flags, seq, nfgenmsg family, body after the nfgenmsg).
fn sent(bytes: &[u8]) -> Vec<(u16, u16, u32, u8, Vec<u8>)> {
    crate::netlink::messages(bytes)
        .map(|m| {
            let m = m.unwrap();
            (m.kind, m.flags, m.seq, m.body[0], m.body[4..].to_vec())
        })
        .collect()
}

fn replacement() -> Replacement {
    let slot = Slot {
        addr: "10.1.0.1".parse().unwrap(),
        port: 80,
        n: 1,
    };
    Replacement {
        map: "be-tcp-2a".into(),
        slots: vec![(slot, "10.2.0.2:8080".parse().unwrap())],
    }
}

#[test]
fn a_replacement_is_a_delete_and_an_add_in_one_batch() {
    let batch = encode(Family::Ip, &[replacement()], 100);
    let m = sent(&batch.bytes);
    let kinds: Vec<u16> = m.iter().map(|m| m.0).collect();
    assert_eq!(kinds, [0x10, 0x0a0e, 0x0a0c, 0x11]);
    let seqs: Vec<u32> = m.iter().map(|m| m.2).collect();
    assert_eq!(seqs, [101, 102, 103, 104]);
    assert_eq!(
        batch.acks,
        [102, 103],
        "the two element messages are acknowledged"
    );
    // The delimiters name the nftables subsystem; the element messages the family.
    assert_eq!(m[0].3, 0);
    assert_eq!(m[1].3, 2);
    assert_eq!(m[2].1, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
    assert_eq!(m[1].1, NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(&batch.bytes[16..20], &[0, 0, 0, 10]);
    let v6 = encode(Family::Ip6, &[], 0);
    assert_eq!(sent(&v6.bytes).len(), 2);
}

/// The element bytes `nft --debug=netlink add element ip t be { 10.1.0.1 . 80 . 1 :
/// 10.2.0.2 . 8080 }` prints for a map `typeof ip daddr . tcp dport . numgen inc mod 2 : ip
/// daddr . tcp dport` (nft 1.0.6, x86-64): `element 0100010a 00005000 00000001 : 0200020a
/// 0000901f`, each word a host-order u32 of the bytes below.
#[cfg(target_endian = "little")]
#[test]
fn elements_are_laid_out_as_nft_lays_them_out() {
    let batch = encode(Family::Ip, &[replacement()], 0);
    let m = sent(&batch.bytes);
    let add = &m[2].4;
    let key = [0x0a, 1, 0, 1, 0, 0x50, 0, 0, 1, 0, 0, 0];
    let value = [0x0a, 2, 0, 2, 0x1f, 0x90, 0, 0];
    let table = [6, 0, 1, 0, b'f', b'e', b'r', b'r', b'o', b'l', b'b', 0];
    // Table and set names as NUL-terminated strings, padded.
    assert_eq!(&add[..4], &[12, 0, 1, 0]);
    assert_eq!(&add[4..12], &table[4..]);
    assert_eq!(&add[12..16], &[14, 0, 2, 0]);
    assert_eq!(&add[16..26], b"be-tcp-2a\0");
    let elements = &add[28..];
    // ELEMENTS { LIST_ELEM { KEY { VALUE key } DATA { VALUE value } } }, all nested.
    let nested = |len: u16, kind: u16| {
        let mut v = len.to_ne_bytes().to_vec();
        v.extend((kind | NLA_F_NESTED).to_ne_bytes());
        v
    };
    let mut want = nested(4 + 4 + 4 + 4 + 12 + 4 + 4 + 8, 3);
    want.extend(nested(4 + 4 + 4 + 12 + 4 + 4 + 8, 1));
    want.extend(nested(4 + 4 + 12, 1));
    want.extend([16, 0, 1, 0]);
    want.extend(key);
    want.extend(nested(4 + 4 + 8, 2));
    want.extend([12, 0, 1, 0]);
    want.extend(value);
    assert_eq!(elements, &want[..]);
    // The delete carries the keys alone.
    let del = &m[1].4;
    assert!(del.windows(key.len()).any(|w| w == key));
    assert!(!del.windows(value.len()).any(|w| w == value));
}

#[test]
fn ipv6_elements_hold_sixteen_byte_addresses() {
    let slot = Slot {
        addr: "fd00::1".parse().unwrap(),
        port: 443,
        n: 0,
    };
    let r = Replacement {
        map: "be-tcp-01".into(),
        slots: vec![(slot, "[fd00:10::5]:8443".parse().unwrap())],
    };
    let m = sent(&encode(Family::Ip6, &[r], 0).bytes);
    assert_eq!(m[2].3, 10, "NFPROTO_IPV6");
    let mut key: Vec<u8> = "fd00::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    key.extend([1, 0xbb, 0, 0]);
    key.extend(0u32.to_ne_bytes());
    assert!(m[2].4.windows(key.len()).any(|w| w == key.as_slice()));
}

#[test]
fn additions_are_cut_into_messages_and_transactions_that_fit() {
    let slots: Vec<(Slot, std::net::SocketAddr)> = (0..5000u32)
        .map(|n| {
            let slot = Slot {
                addr: "10.1.0.1".parse().unwrap(),
                port: 80,
                n,
            };
            (slot, "10.2.0.2:8080".parse().unwrap())
        })
        .collect();
    let maps = [Replacement {
        map: "be-tcp".into(),
        slots,
    }];
    let batches = encode_additions(Family::Ip, &maps, 7, 100 * 1024);
    assert!(batches.len() >= 2, "{} transactions", batches.len());
    let (mut elements, mut last_seq) = (0, 7);
    for b in &batches {
        let m = sent(&b.bytes);
        assert_eq!(m.first().unwrap().0, 0x10, "each transaction begins");
        assert_eq!(m.last().unwrap().0, 0x11, "and ends");
        for (kind, flags, seq, _, body) in &m[1..m.len() - 1] {
            assert_eq!(*kind, 0x0a0c, "additions only");
            assert_eq!(*flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
            assert!(b.acks.contains(seq));
            // The element list is one attribute: its length must fit 16 bits.
            let list = crate::netlink::attributes(body)
                .map(Result::unwrap)
                .find(|(k, _)| k & crate::netlink::NLA_TYPE_MASK == 3)
                .unwrap()
                .1;
            assert!(list.len() <= MAX_ELEMENTS_BYTES);
            elements += crate::netlink::attributes(list).count();
        }
        for (_, _, seq, _, _) in &m {
            assert!(*seq > last_seq, "sequence numbers keep rising");
            last_seq = *seq;
        }
    }
    assert_eq!(elements, 5000);
    assert!(encode_additions(Family::Ip, &[], 0, 1024).is_empty());
}

/// The services map's element as `nft --debug=netlink add element ip t services { 10.96.0.1 .
/// tcp . 80 : goto c }` lays it out: the address, the protocol byte and the port, each in a
/// 32-bit register; a verdict holding the goto code and the chain's name.
#[test]
fn a_services_element_is_a_key_and_a_goto() {
    let key = VsKey {
        proto: crate::ipvs::model::Proto::Udp,
        addr: "10.96.0.1".parse().unwrap(),
        port: 53,
    };
    let m = sent(&encode_services(Family::Ip, &[(key, "rr-udp-2".into())], 0).bytes);
    let kinds: Vec<u16> = m.iter().map(|m| m.0).collect();
    assert_eq!(kinds, [0x10, 0x0a0c, 0x11]);
    let body = &m[1].4;
    assert!(body.windows(9).any(|w| w == b"services\0"));
    let want_key = [10, 96, 0, 1, 17, 0, 0, 0, 0, 53, 0, 0];
    assert!(body.windows(12).any(|w| w == want_key));
    // NFTA_VERDICT_CODE: NFT_GOTO (-4), big-endian; NFTA_VERDICT_CHAIN: the name.
    let code = [8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfc];
    assert!(body.windows(8).any(|w| w == code));
    assert!(body.windows(9).any(|w| w == b"rr-udp-2\0"));
}

#[test]
fn replies_are_acks_and_errors_by_sequence_number() {
    let reply = |seq: u32, error: i32| {
        let mut v = Vec::new();
        let mut body = error.to_ne_bytes().to_vec();
        body.extend([0; 16]); // the answered message's header
        crate::netlink::push_message(&mut v, crate::netlink::NLMSG_ERROR, 0, seq, &body);
        v
    };
    let mut buf = reply(7, 0);
    buf.extend(reply(8, -2));
    assert_eq!(
        replies(&buf),
        [Reply { seq: 7, error: 0 }, Reply { seq: 8, error: -2 }]
    );
    // Cut short: what is whole is read, the rest ignored.
    assert_eq!(replies(&buf[..50]), [Reply { seq: 7, error: 0 }]);
    assert!(replies(&[]).is_empty());
    // A header announcing an error but too short to hold its code: no reply made up from
    // the bytes of the next message.
    let mut short = buf[..16].to_vec();
    short[0..4].copy_from_slice(&16u32.to_ne_bytes());
    short.extend(reply(9, 0));
    assert_eq!(replies(&short), [Reply { seq: 9, error: 0 }]);
}

proptest! {
    /// Whatever the socket hands over, reading it never panics or loops.
    #[test]
    fn replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = replies(&bytes);
    }
}
