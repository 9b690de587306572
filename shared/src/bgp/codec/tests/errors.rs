//! Every way a message can be refused, and the NOTIFICATION each one answers with
//! (RFC 4271 §6, RFC 7606 for which UPDATE errors let the session live on).

use super::super::notification::{code, header_error, open_error, update_error};
use super::super::{
    CodecOptions, DecodeError, ErrorKind, Message, MpProblem, PrefixProblem, decode,
};
use super::{FOUR, TWO, decode_one, frame, hex, msg, update_body};

const ORIGIN: &str = "40 01 01 00";
const AS_PATH: &str = "40 02 06 02 01 0000fde9";
const NEXT_HOP: &str = "40 03 04 c0000201";
/// 10.0.0.0/8.
const NLRI: &str = "08 0a";

fn err(bytes: &[u8], opts: &CodecOptions) -> DecodeError {
    match decode(bytes, opts) {
        Err(e) => e,
        other => panic!("{bytes:02x?} was accepted: {other:?}"),
    }
}

#[track_caller]
fn assert_answer(e: &DecodeError, code: u8, subcode: u8, data: &[u8]) {
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data.as_slice()
        ),
        (code, subcode, data),
        "{e}"
    );
}

/// An UPDATE with the given attributes (hex) and NLRI (hex).
fn update(attributes: &[&str], nlri: &str) -> Vec<u8> {
    frame(2, &update_body(&hex(&attributes.concat()), &hex(nlri)))
}

fn update_err(attributes: &[&str], nlri: &str) -> DecodeError {
    err(&update(attributes, nlri), &FOUR)
}

// ---------------------------------------------------------------- header

#[test]
fn bad_marker_is_refused_at_once() {
    let mut keepalive = msg("0013 04");
    keepalive[5] = 0xfe;
    let e = err(&keepalive, &FOUR);
    assert_answer(
        &e,
        code::MESSAGE_HEADER_ERROR,
        header_error::CONNECTION_NOT_SYNCHRONIZED,
        &[],
    );
    assert_eq!(e.kind, ErrorKind::BadMarker);
    assert_eq!(e.message_len, None);
    // Garbage is refused from its first byte, without waiting for a header.
    assert_answer(&err(b"G", &FOUR), 1, 1, &[]);
    assert_answer(&err(b"GET / HTTP/1.1\r\n", &FOUR), 1, 1, &[]);
    assert_eq!(decode(&[0xff; 5], &FOUR), Ok(None));
}

#[test]
fn bad_lengths_carry_the_length() {
    for (rest, length) in [
        ("0012 04", 18u16),
        ("0000 04", 0),
        ("1001 02", 4097),
        ("ffff 02", 65535),
        ("0014 04", 20), // KEEPALIVE is exactly 19
        ("001c 01", 28), // OPEN is at least 29
        ("0016 02", 22), // UPDATE is at least 23
        ("0014 03", 20), // NOTIFICATION is at least 21
    ] {
        let e = err(&msg(rest), &FOUR);
        assert_answer(
            &e,
            code::MESSAGE_HEADER_ERROR,
            header_error::BAD_MESSAGE_LENGTH,
            &length.to_be_bytes(),
        );
        assert!(
            e.to_string().contains(&format!("message length {length}")),
            "{e}"
        );
    }
    // ROUTE-REFRESH is exactly 23; with a body, only once the body is in.
    let short = msg("0016 05 0001 00");
    assert_answer(&err(&short, &FOUR), 1, 2, &[0, 0x16]);
    let long = msg("0018 05 0001 00 01 00");
    assert_eq!(decode(&long[..20], &FOUR), Ok(None));
    assert_answer(&err(&long, &FOUR), 1, 2, &[0, 0x18]);
    // A Beginning-of-RIB-Refresh of the wrong length: RFC 7313's own error, whole message.
    let borr = msg("0018 05 0001 01 01 00");
    let e = err(&borr, &FOUR);
    assert_answer(&e, code::ROUTE_REFRESH_MESSAGE_ERROR, 1, &borr);
    // The length is refused as soon as the header is in.
    assert_answer(&err(&msg("1001 02"), &FOUR), 1, 2, &[0x10, 0x01]);
}

#[test]
fn bad_types_carry_the_type() {
    for t in [0u8, 6, 7, 128, 255] {
        let e = err(&frame(t, &[]), &FOUR);
        assert_answer(
            &e,
            code::MESSAGE_HEADER_ERROR,
            header_error::BAD_MESSAGE_TYPE,
            &[t],
        );
        assert_eq!(e.kind, ErrorKind::BadType(t));
    }
}

#[test]
fn the_largest_message_is_accepted() {
    // 4096 bytes: an UPDATE withdrawing 1017 /24s and one /32.
    let mut withdrawn = [24u8, 10, 1, 2].repeat(1017);
    withdrawn.extend_from_slice(&[32, 10, 1, 2, 3]);
    let mut body = u16::try_from(withdrawn.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    body.extend(withdrawn);
    body.extend_from_slice(&[0, 0]);
    let m = frame(2, &body);
    assert_eq!(m.len(), 4096);
    let Message::Update(u) = decode_one(&m, &FOUR) else {
        panic!("not an UPDATE")
    };
    assert_eq!(u.withdrawn.len(), 1018);
}

// ---------------------------------------------------------------- OPEN

/// An OPEN body: version, AS, hold time, identifier, then `params` (hex, with their
/// length octet).
fn open(version: u8, asn: u16, hold: u16, id: [u8; 4], params: &str) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&asn.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.extend(hex(params));
    frame(1, &b)
}

const ID: [u8; 4] = [192, 0, 2, 1];

#[test]
fn open_errors() {
    let cases: [(Vec<u8>, u8, &[u8]); 13] = [
        (
            open(3, 65001, 90, ID, "00"),
            open_error::UNSUPPORTED_VERSION_NUMBER,
            &[0, 4],
        ),
        (open(4, 0, 90, ID, "00"), open_error::BAD_PEER_AS, &[]),
        // AS 0 in the 4-octet capability (RFC 7607).
        (
            open(4, 23456, 90, ID, "08 02 06 41 04 00000000"),
            open_error::BAD_PEER_AS,
            &[],
        ),
        (
            open(4, 65001, 1, ID, "00"),
            open_error::UNACCEPTABLE_HOLD_TIME,
            &[],
        ),
        (
            open(4, 65001, 2, ID, "00"),
            open_error::UNACCEPTABLE_HOLD_TIME,
            &[],
        ),
        (
            open(4, 65001, 90, [0; 4], "00"),
            open_error::BAD_BGP_IDENTIFIER,
            &[],
        ),
        // Authentication (type 1, deprecated) and unknown parameter types.
        (
            open(4, 65001, 90, ID, "03 01 01 00"),
            open_error::UNSUPPORTED_OPTIONAL_PARAMETER,
            &[],
        ),
        (
            open(4, 65001, 90, ID, "02 07 00"),
            open_error::UNSUPPORTED_OPTIONAL_PARAMETER,
            &[],
        ),
        // Parameters length past the message, bytes after the parameters.
        (
            open(4, 65001, 90, ID, "05 02 00"),
            open_error::UNSPECIFIC,
            &[],
        ),
        (open(4, 65001, 90, ID, "00 00"), open_error::UNSPECIFIC, &[]),
        // A capability past its parameter; known capabilities with bad lengths.
        (
            open(4, 65001, 90, ID, "04 02 02 01 04"),
            open_error::UNSPECIFIC,
            &[],
        ),
        (
            open(4, 65001, 90, ID, "07 02 05 01 03 0001 00"),
            open_error::UNSPECIFIC,
            &[],
        ),
        (
            open(4, 65001, 90, ID, "07 02 05 40 03 0078 00"),
            open_error::UNSPECIFIC,
            &[],
        ),
    ];
    for (bytes, subcode, data) in cases {
        let e = err(&bytes, &TWO);
        assert_answer(&e, code::OPEN_MESSAGE_ERROR, subcode, data);
        assert_eq!(e.message_len, Some(bytes.len()));
        assert!(!e.treat_as_withdraw);
    }
    // Hold times 0 and 3 are fine; so are unknown capabilities and route refresh with data
    // of the wrong length is not.
    for hold in [0, 3, 65535] {
        decode_one(&open(4, 65001, hold, ID, "00"), &TWO);
    }
    decode_one(&open(4, 65001, 90, ID, "05 02 03 99 01 ff"), &TWO);
    let e = err(&open(4, 65001, 90, ID, "05 02 03 02 01 00"), &TWO);
    assert_eq!(
        e.kind,
        ErrorKind::MalformedCapability { code: 2, length: 1 }
    );
    assert_eq!(
        e.to_string(),
        "capability 2 has a malformed value of 1 bytes (answer: NOTIFICATION 2/0)"
    );
}

/// RFC 9072: optional parameters longer than 255 bytes.
#[test]
fn extended_optional_parameters() {
    // By hand from RFC 9072 §2: Non-Ext OP Len 255, Non-Ext OP Type 255, a 2-octet length,
    // then parameters with 2-octet lengths: one capabilities parameter holding route refresh
    // and 4-octet AS 65001.
    let bytes = open(4, 65001, 90, ID, "ff ff 000b 02 0008 02 00 41 04 0000fde9");
    let Message::Open(o) = decode_one(&bytes, &TWO) else {
        panic!("not an OPEN")
    };
    assert_eq!(o.capabilities.len(), 2);
    assert_eq!(o.four_octet_as(), Some(65001));
    // The extended length must cover the rest of the message exactly.
    let e = err(
        &open(4, 65001, 90, ID, "ff ff 000c 02 0008 02 00 41 04 0000fde9"),
        &TWO,
    );
    assert_answer(&e, 2, 0, &[]);
    // Our encoder switches to the extended format when the capabilities need it.
    let big = Message::Open(super::super::Open {
        capabilities: (0..6)
            .map(|i| super::super::Capability::Unknown {
                code: 100 + i,
                data: vec![i; 60],
            })
            .collect(),
        ..o
    });
    let encoded = super::super::encode(&big, &TWO);
    assert_eq!(encoded[28..30], [0xff, 0xff]);
    assert_eq!(decode_one(&encoded, &TWO), big);
}

// ---------------------------------------------------------------- UPDATE framing

#[test]
fn update_framing_errors_reset_the_session() {
    let list = update_error::MALFORMED_ATTRIBUTE_LIST;
    // Withdrawn Routes Length past the message.
    let e = err(&frame(2, &hex("0009 18 0a0000 0000")), &FOUR);
    assert_answer(&e, 3, list, &[]);
    assert_eq!(
        e.kind,
        ErrorKind::WithdrawnOverrun {
            length: 9,
            available: 6
        }
    );
    // Total Path Attribute Length past the message.
    let e = err(&frame(2, &hex("0000 0010 40010100")), &FOUR);
    assert_answer(&e, 3, list, &[]);
    assert_eq!(
        e.kind,
        ErrorKind::AttributesOverrun {
            length: 16,
            available: 4
        }
    );
    // An attribute past the attribute list, and a lone flags octet.
    let e = err(&update(&["40 01 05 00"], ""), &FOUR);
    assert_answer(&e, 3, list, &[]);
    assert_eq!(
        e.kind,
        ErrorKind::AttributeOverrun {
            code: 1,
            length: 5,
            available: 1
        }
    );
    assert_answer(&err(&update(&[ORIGIN, "40"], ""), &FOUR), 3, list, &[]);
    assert_answer(
        &err(&update(&[ORIGIN, "50 02 00"], ""), &FOUR),
        3,
        list,
        &[],
    );
    // Malformed withdrawn prefixes.
    let e = err(&frame(2, &hex("0002 21 0a 0000")), &FOUR);
    assert_answer(&e, 3, list, &[]);
    assert_eq!(e.kind, ErrorKind::BadWithdrawn(PrefixProblem::TooLong(33)));
    let e = err(&frame(2, &hex("0002 18 0a 0000")), &FOUR);
    assert_eq!(
        e.kind,
        ErrorKind::BadWithdrawn(PrefixProblem::Truncated(24))
    );
    // Malformed NLRI: Invalid Network Field.
    let e = update_err(&[ORIGIN, AS_PATH, NEXT_HOP], "21 0a000000 00");
    assert_answer(&e, 3, update_error::INVALID_NETWORK_FIELD, &[]);
    let e = update_err(&[ORIGIN, AS_PATH, NEXT_HOP], "08 0a 18 0a00");
    assert_eq!(e.kind, ErrorKind::BadNlri(PrefixProblem::Truncated(24)));
    assert!(!e.treat_as_withdraw);
    assert!(e.message_len.is_some());
    // MP_REACH_NLRI twice.
    let mp = "80 0e 15 0002 01 10 20010db8000000000000000000000001 00";
    let e = update_err(&[ORIGIN, AS_PATH, mp, mp], "");
    assert_eq!(e.kind, ErrorKind::DuplicateAttribute(14));
    assert_answer(&e, 3, list, &[]);
    // An attribute marked well-known that we do not know.
    let e = update_err(&[ORIGIN, AS_PATH, NEXT_HOP, "40 63 02 abcd"], NLRI);
    assert_answer(
        &e,
        3,
        update_error::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
        &hex("40 63 02 abcd"),
    );
    assert!(!e.treat_as_withdraw);
}

// ---------------------------------------------------------------- UPDATE attributes

/// Attribute errors that leave the prefixes readable: RFC 4271's NOTIFICATION, and
/// RFC 7606's permission to treat the routes as withdrawn instead.
#[test]
fn attribute_errors_allow_treat_as_withdraw() {
    use update_error::*;
    let cases: [(&[&str], &str, u8, &str); 17] = [
        // Flags contradicting the type: ORIGIN marked optional, MED transitive,
        // LOCAL_PREF partial, COMMUNITIES non-transitive.
        (
            &["c0 01 01 00", AS_PATH, NEXT_HOP],
            NLRI,
            ATTRIBUTE_FLAGS_ERROR,
            "c0 01 01 00",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "c0 04 04 00000001"],
            NLRI,
            ATTRIBUTE_FLAGS_ERROR,
            "c0 04 04 00000001",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "60 05 04 00000064"],
            NLRI,
            ATTRIBUTE_FLAGS_ERROR,
            "60 05 04 00000064",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "80 08 04 fde80064"],
            NLRI,
            ATTRIBUTE_FLAGS_ERROR,
            "80 08 04 fde80064",
        ),
        // Lengths that do not fit the type.
        (
            &["40 01 02 0000", AS_PATH, NEXT_HOP],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "40 01 02 0000",
        ),
        (
            &[ORIGIN, AS_PATH, "40 03 05 c000020100"],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "40 03 05 c000020100",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "80 04 03 000001"],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "80 04 03 000001",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "40 05 08 0000006400000064"],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "40 05 08 0000006400000064",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 05 fde8006401"],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "c0 08 05 fde8006401",
        ),
        (
            &[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 00"],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "c0 08 00",
        ),
        (
            &[
                ORIGIN,
                AS_PATH,
                NEXT_HOP,
                "c0 20 0d 000000010000000200000003 04",
            ],
            NLRI,
            ATTRIBUTE_LENGTH_ERROR,
            "c0 20 0d 000000010000000200000003 04",
        ),
        // ORIGIN out of range.
        (
            &["40 01 01 03", AS_PATH, NEXT_HOP],
            NLRI,
            INVALID_ORIGIN_ATTRIBUTE,
            "40 01 01 03",
        ),
        // NEXT_HOP that is no unicast host: this network, loopback, multicast, broadcast.
        (
            &[ORIGIN, AS_PATH, "40 03 04 00000000"],
            NLRI,
            INVALID_NEXT_HOP_ATTRIBUTE,
            "40 03 04 00000000",
        ),
        (
            &[ORIGIN, AS_PATH, "40 03 04 7f000001"],
            NLRI,
            INVALID_NEXT_HOP_ATTRIBUTE,
            "40 03 04 7f000001",
        ),
        (
            &[ORIGIN, AS_PATH, "40 03 04 e0000005"],
            NLRI,
            INVALID_NEXT_HOP_ATTRIBUTE,
            "40 03 04 e0000005",
        ),
        (
            &[ORIGIN, AS_PATH, "40 03 04 ffffffff"],
            NLRI,
            INVALID_NEXT_HOP_ATTRIBUTE,
            "40 03 04 ffffffff",
        ),
        // Missing well-known attributes: the data is the missing type code.
        (
            &[AS_PATH, NEXT_HOP],
            NLRI,
            MISSING_WELL_KNOWN_ATTRIBUTE,
            "01",
        ),
    ];
    for (attributes, nlri, subcode, data) in cases {
        let bytes = update(attributes, nlri);
        let e = err(&bytes, &FOUR);
        assert_answer(&e, code::UPDATE_MESSAGE_ERROR, subcode, &hex(data));
        assert!(e.treat_as_withdraw, "{e}");
        assert_eq!(e.message_len, Some(bytes.len()));
    }
    assert_answer(&update_err(&[ORIGIN, NEXT_HOP], NLRI), 3, 3, &[2]);
    assert_answer(&update_err(&[ORIGIN, AS_PATH], NLRI), 3, 3, &[3]);
    // An IPv6-only announcement needs no NEXT_HOP, but ORIGIN and AS_PATH.
    let mp = "80 0e 1a 0002 01 10 20010db8000000000000000000000001 00 20 20010db8";
    decode_one(&update(&[ORIGIN, AS_PATH, mp], ""), &FOUR);
    assert_answer(&update_err(&[AS_PATH, mp], ""), 3, 3, &[1]);
    // Without NLRI nothing is mandatory, and NEXT_HOP is not checked.
    decode_one(&update(&["40 03 04 00000000"], ""), &FOUR);
    let e = update_err(&["40 01 01 07", AS_PATH, NEXT_HOP], NLRI);
    assert_eq!(e.to_string(), "invalid ORIGIN 7 (answer: NOTIFICATION 3/6)");
}

#[test]
fn malformed_as_paths() {
    for path in [
        "40 02 06 05 01 0000fde9",    // unknown segment type 5
        "40 02 02 02 00",             // empty segment
        "40 02 06 02 02 0000fde9",    // segment runs past the attribute
        "40 02 07 02 01 0000fde9 02", // a cut segment header
    ] {
        let e = update_err(&[ORIGIN, path, NEXT_HOP], NLRI);
        assert_answer(&e, 3, update_error::MALFORMED_AS_PATH, &[]);
        assert!(e.treat_as_withdraw);
    }
    // A 4-octet path read on a 2-octet session does not parse either.
    let e = err(
        &update(
            &[ORIGIN, "40 02 0a 02 02 0000fde9 0000fdea", NEXT_HOP],
            NLRI,
        ),
        &TWO,
    );
    assert_answer(&e, 3, 11, &[]);
    // Confederation segments (RFC 5065) are accepted.
    decode_one(
        &update(
            &[ORIGIN, "40 02 0c 03 01 0000fde9 04 01 0000fdea", NEXT_HOP],
            NLRI,
        ),
        &FOUR,
    );
}

#[test]
fn mp_attribute_errors_reset_the_session() {
    let optional = update_error::OPTIONAL_ATTRIBUTE_ERROR;
    let cases = [
        // Next hop of 15 bytes.
        (
            "80 0e 14 0002 01 0f 20010db80000000000000000000000 00",
            MpProblem::NextHopLength(15),
        ),
        // Shorter than AFI, SAFI and next hop length.
        ("80 0e 02 0002", MpProblem::Truncated),
        // Next hop past the attribute.
        ("80 0e 08 0002 01 10 20010db8", MpProblem::Truncated),
        // A /129 prefix, a prefix past the attribute.
        (
            "80 0e 17 0002 01 10 20010db8000000000000000000000001 00 81 20",
            MpProblem::Prefix(PrefixProblem::TooLong(129)),
        ),
        (
            "80 0e 17 0002 01 10 20010db8000000000000000000000001 00 30 20",
            MpProblem::Prefix(PrefixProblem::Truncated(48)),
        ),
        ("80 0f 02 0002", MpProblem::Truncated),
        (
            "80 0f 05 0002 01 40 20",
            MpProblem::Prefix(PrefixProblem::Truncated(64)),
        ),
    ];
    for (mp, problem) in cases {
        let e = update_err(&[ORIGIN, AS_PATH, mp], "");
        assert_answer(&e, 3, optional, &hex(mp));
        assert!(
            matches!(e.kind, ErrorKind::MalformedMpAttribute { problem: p, .. } if p == problem),
            "{e}"
        );
        assert!(!e.treat_as_withdraw);
    }
    // Flags errors on MP attributes hide the prefixes too.
    let e = update_err(&[ORIGIN, AS_PATH, "40 0f 03 0002 01"], "");
    assert_answer(
        &e,
        3,
        update_error::ATTRIBUTE_FLAGS_ERROR,
        &hex("40 0f 03 0002 01"),
    );
    assert!(!e.treat_as_withdraw);
    // A soft error first, then a hard one: the hard one wins.
    let e = update_err(&["40 01 01 09", AS_PATH, "80 0e 02 0002"], "");
    assert_eq!(e.notification.subcode, optional);
    assert!(!e.treat_as_withdraw);
}

#[test]
fn lenient_where_rfc_7606_says_so() {
    // Repeated attributes other than MP_*: the first one counts.
    let Message::Update(u) = decode_one(
        &update(&[ORIGIN, "40 01 01 02", AS_PATH, NEXT_HOP], NLRI),
        &FOUR,
    ) else {
        panic!("not an UPDATE")
    };
    assert_eq!(u.attributes.origin, Some(super::super::Origin::Igp));
    // A malformed ATOMIC_AGGREGATE is discarded.
    let Message::Update(u) = decode_one(
        &update(&[ORIGIN, AS_PATH, NEXT_HOP, "40 06 01 00"], NLRI),
        &FOUR,
    ) else {
        panic!("not an UPDATE")
    };
    assert!(!u.attributes.atomic_aggregate);
    // Unknown optional attributes are kept, with their flags; host bits are cleared.
    let Message::Update(u) = decode_one(
        &update(&[ORIGIN, AS_PATH, NEXT_HOP, "e0 63 02 abcd"], "0c 0a ff"),
        &FOUR,
    ) else {
        panic!("not an UPDATE")
    };
    assert_eq!(u.nlri, vec!["10.240.0.0/12".parse().unwrap()]);
    let raw = &u.attributes.other[0];
    assert!(raw.is_optional() && raw.is_transitive() && raw.is_partial());
    assert_eq!((raw.code, raw.value.as_slice()), (0x63, &[0xab, 0xcd][..]));
}
