//! `pack_updates`: many routes in few messages, each within the limit, decoding back to
//! exactly what went in.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use proptest::prelude::*;

use super::super::{
    AsSegment, AsSegmentKind, Attributes, Ipv6NextHop, Message, Origin, PackError, Update, decode,
    encode, pack_updates,
};
use super::FOUR;
use super::props::{route_attributes, v4_prefix, v6_prefix};

/// Decodes every message: the announced routes (with the attributes as decoded) and the
/// withdrawn prefixes, each sorted.
fn unpack(messages: &[Vec<u8>], max_len: usize) -> (Vec<(IpNet, Attributes)>, Vec<IpNet>) {
    let mut routes = Vec::new();
    let mut withdrawn = Vec::new();
    for m in messages {
        assert!(m.len() <= max_len, "a message of {} bytes", m.len());
        let Ok(Some((Message::Update(u), consumed))) = decode(m, &FOUR) else {
            panic!("{m:02x?} does not decode");
        };
        assert_eq!(consumed, m.len());
        assert!(
            u.nlri.is_empty() || u.withdrawn.is_empty(),
            "announcements and withdrawals travel apart"
        );
        routes.extend(u.nlri.iter().map(|p| (*p, u.attributes.clone())));
        withdrawn.extend(u.withdrawn);
    }
    sort(&mut routes);
    withdrawn.sort();
    (routes, withdrawn)
}

fn sort(routes: &mut [(IpNet, Attributes)]) {
    routes.sort_by_cached_key(|(p, a)| (*p, format!("{a:?}")));
}

/// The attributes a route's message carries: only its own family's next hop.
fn as_sent(prefix: IpNet, attributes: &Attributes) -> (IpNet, Attributes) {
    let mut a = attributes.clone();
    match prefix {
        IpNet::V4(_) => a.mp_next_hop = None,
        IpNet::V6(_) => a.next_hop = None,
    }
    (prefix, a)
}

fn node_attributes() -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(vec![AsSegment {
            kind: AsSegmentKind::Sequence,
            asns: vec![4_200_000_001],
        }]),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        mp_next_hop: Some(Ipv6NextHop {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        }),
        communities: vec![0xfde8_0064],
        large_communities: vec![(4_200_000_001, 1, 2)],
        ..Attributes::default()
    }
}

#[test]
fn ten_thousand_ipv4_routes_fill_thirteen_messages() {
    let attributes = node_attributes();
    let routes: Vec<(IpNet, Attributes)> = (0..10_000u32)
        .map(|i| {
            (
                IpNet::from(std::net::IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))),
                attributes.clone(),
            )
        })
        .collect();
    let messages = pack_updates(&routes, &[], 4096, &FOUR).unwrap();
    // Each /32 takes 5 bytes after the fixed part of the message.
    let empty = Update {
        attributes: Attributes {
            mp_next_hop: None,
            ..attributes.clone()
        },
        ..Update::default()
    };
    let fixed = encode(&Message::Update(empty), &FOUR).len();
    let per_message = (4096 - fixed) / 5;
    assert_eq!(messages.len(), 10_000usize.div_ceil(per_message));
    assert_eq!(messages.len(), 13);
    assert!(messages[..12].iter().all(|m| m.len() > 4090));
    let (decoded, _) = unpack(&messages, 4096);
    let mut expected: Vec<_> = routes.iter().map(|(p, a)| as_sent(*p, a)).collect();
    sort(&mut expected);
    assert_eq!(decoded, expected);
}

#[test]
fn ten_thousand_ipv6_routes_and_withdrawals() {
    let attributes = node_attributes();
    let v6 = |i: u128| {
        IpNet::from(std::net::IpAddr::V6(std::net::Ipv6Addr::from(
            (0x2001_0db8_u128 << 96) + i,
        )))
    };
    let routes: Vec<(IpNet, Attributes)> =
        (0..10_000).map(|i| (v6(i), attributes.clone())).collect();
    let withdrawn: Vec<IpNet> = (10_000..20_000).map(v6).collect();
    let messages = pack_updates(&routes, &withdrawn, 4096, &FOUR).unwrap();
    // A /128 takes 17 bytes; roughly 240 fit one message either way.
    assert!(
        messages.len() <= 2 * 10_000usize.div_ceil(235),
        "{} messages",
        messages.len()
    );
    let (decoded, back) = unpack(&messages, 4096);
    let mut expected: Vec<_> = routes.iter().map(|(p, a)| as_sent(*p, a)).collect();
    sort(&mut expected);
    assert_eq!(decoded, expected);
    assert_eq!(back, withdrawn);
}

#[test]
fn pack_errors() {
    let no_next_hop = Attributes {
        next_hop: None,
        ..node_attributes()
    };
    let prefix: IpNet = "10.0.0.0/8".parse().unwrap();
    assert_eq!(
        pack_updates(&[(prefix, no_next_hop)], &[], 4096, &FOUR),
        Err(PackError::MissingNextHop { prefix })
    );
    let huge = Attributes {
        large_communities: vec![(1, 2, 3); 400],
        ..node_attributes()
    };
    let e = pack_updates(&[(prefix, huge)], &[], 4096, &FOUR).unwrap_err();
    assert!(matches!(e, PackError::TooLarge { needed, max_len: 4096, .. } if needed > 4096));
    assert!(e.to_string().contains("10.0.0.0/8"), "{e}");
    // Nothing to send, nothing sent; the limit is capped at 4096.
    assert_eq!(pack_updates(&[], &[], 4096, &FOUR), Ok(vec![]));
    let one = pack_updates(&[(prefix, node_attributes())], &[], 100_000, &FOUR).unwrap();
    assert_eq!(one.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn packed_routes_decode_back(
        pool in prop::collection::vec(route_attributes(false), 1..4),
        picks in prop::collection::vec((any::<bool>(), v4_prefix(), v6_prefix(), any::<prop::sample::Index>()), 0..300),
        withdrawn in prop::collection::vec(prop_oneof![v4_prefix(), v6_prefix()], 0..300),
        max_len in 200usize..=4096,
    ) {
        let pool: Vec<Attributes> = pool
            .into_iter()
            .map(|mut a| {
                a.next_hop.get_or_insert(Ipv4Addr::new(192, 0, 2, 1));
                a.mp_next_hop.get_or_insert(Ipv6NextHop {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: None,
                });
                a
            })
            .collect();
        let routes: Vec<(IpNet, Attributes)> = picks
            .into_iter()
            .map(|(v4, p4, p6, i)| (if v4 { p4 } else { p6 }, pool[i.index(pool.len())].clone()))
            .collect();
        match pack_updates(&routes, &withdrawn, max_len, &FOUR) {
            Ok(messages) => {
                let (decoded, back) = unpack(&messages, max_len);
                let mut expected: Vec<_> = routes.iter().map(|(p, a)| as_sent(*p, a)).collect();
                sort(&mut expected);
                prop_assert_eq!(decoded, expected);
                let mut w = withdrawn.clone();
                w.sort();
                prop_assert_eq!(back, w);
            }
            Err(PackError::TooLarge { prefix, needed, max_len: limit }) => {
                // Only when that prefix alone, with its attributes, cannot fit.
                prop_assert_eq!(limit, max_len);
                prop_assert!(needed > max_len);
                let fits_alone = routes.iter().filter(|(p, _)| *p == prefix).any(|(p, a)| {
                    let (p, a) = as_sent(*p, a);
                    let u = Update { nlri: vec![p], attributes: a, ..Update::default() };
                    encode(&Message::Update(u), &FOUR).len() == needed
                });
                prop_assert!(fits_alone, "no route for {} needs {} bytes", prefix, needed);
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}
