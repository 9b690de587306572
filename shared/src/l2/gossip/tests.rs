//! The gossip core on its own: codec and framing against fixed bytes, validation. Whole
//! clusters on the simulated network are in [`cluster`] (convergence, detection of a killed,
//! paused or cut-off member, graceful leave, rejoin, wrong keys, hostile bytes, traffic per
//! member); hostile bytes as properties in [`props`].

mod cluster;
mod props;

use super::codec::{CodecError, WireCodec, put_member};
use super::*;
use foca::{Codec, Header, Member, Message, State};
use std::time::Duration;

fn id(node: &str, addr: &str, boot: u64) -> NodeId {
    NodeId {
        node: node.to_owned(),
        addr: addr.parse().unwrap(),
        boot,
    }
}

// ---------------------------------------------------------------------------------------
// Codec and framing, against fixed bytes.

#[test]
fn header_encodes_to_fixed_bytes_and_back() {
    let header = Header {
        src: id("a", "192.0.2.1:7946", 1),
        src_incarnation: 2,
        dst: id("b", "[2001:db8::1]:7946", 0x0102_0304_0506_0708),
        message: Message::Ping(7),
    };
    let mut buf = Vec::new();
    WireCodec.encode_header(&header, &mut buf).unwrap();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[4, 192, 0, 2, 1, 0x1f, 0x0a, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'a'][..],
        &[0, 2],
        &[6, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x0a,
          1, 2, 3, 4, 5, 6, 7, 8, 1, b'b'],
        &[0, 7],
    ]
    .concat();
    assert_eq!(buf, want);
    let mut rest = &want[..];
    assert_eq!(WireCodec.decode_header(&mut rest).unwrap(), header);
    assert!(rest.is_empty(), "the decoder consumed exactly the header");
}

#[test]
fn member_encodes_to_fixed_bytes_and_back() {
    let member = Member::new(id("n1", "192.0.2.3:7946", 5), 0x0102, State::Suspect);
    let mut buf = Vec::new();
    put_member(&mut buf, &member);
    let want = [
        4, 192, 0, 2, 3, 0x1f, 0x0a, 0, 0, 0, 0, 0, 0, 0, 5, 2, b'n', b'1', 1, 2, 1,
    ];
    assert_eq!(buf, want);
    let mut rest = &want[..];
    assert_eq!(WireCodec.decode_member(&mut rest).unwrap(), member);
}

#[test]
fn every_message_kind_round_trips() {
    let t = id("target", "192.0.2.9:7946", 3);
    let messages = [
        Message::Ping(1),
        Message::Ack(2),
        Message::PingReq {
            target: t.clone(),
            probe_number: 3,
        },
        Message::IndirectPing {
            origin: t.clone(),
            probe_number: 4,
        },
        Message::IndirectAck {
            target: t.clone(),
            probe_number: 5,
        },
        Message::ForwardedAck {
            origin: t,
            probe_number: 6,
        },
        Message::Announce,
        Message::Feed,
        Message::Gossip,
        Message::Broadcast,
        Message::TurnUndead,
    ];
    for message in messages {
        let header = Header {
            src: id("s", "192.0.2.1:1", 1),
            src_incarnation: 0,
            dst: id("d", "192.0.2.2:2", 2),
            message,
        };
        let mut buf = Vec::new();
        WireCodec.encode_header(&header, &mut buf).unwrap();
        // Every strict prefix is an error, never a panic or a wrong header.
        for cut in 0..buf.len() {
            assert!(WireCodec.decode_header(&buf[..cut]).is_err(), "{cut}");
        }
        assert_eq!(WireCodec.decode_header(&buf[..]).unwrap(), header);
    }
}

#[test]
fn codec_rejects_bad_fields() {
    let mut bad_family = vec![5];
    bad_family.extend_from_slice(&[0; 40]);
    assert_eq!(
        WireCodec.decode_member(&bad_family[..]),
        Err(CodecError::Family(5))
    );
    let mut buf = Vec::new();
    put_member(&mut buf, &Member::alive(id("x", "192.0.2.1:1", 1)));
    *buf.last_mut().unwrap() = 9;
    assert_eq!(WireCodec.decode_member(&buf[..]), Err(CodecError::State(9)));
    // A name that is not UTF-8.
    let mut buf = Vec::new();
    put_member(&mut buf, &Member::alive(id("é", "192.0.2.1:1", 1)));
    buf[16] = 0xff;
    assert_eq!(WireCodec.decode_member(&buf[..]), Err(CodecError::Name));
}

#[test]
fn an_item_that_does_not_fit_leaves_the_buffer_clean() {
    use bytes::BufMut;
    let member = Member::alive(id("node", "192.0.2.1:7946", 1));
    let mut buf = Vec::new().limit(10);
    assert_eq!(
        WireCodec.encode_member(&member, &mut buf),
        Err(CodecError::Full)
    );
    assert!(buf.get_ref().is_empty());
}

#[test]
fn framing_matches_fixed_tags() {
    let auth = Auth::secret(b"0123456789abcdef").unwrap();
    let sealed = auth.seal(b"hello");
    let tag = "5e952386ade404e108b85d8f8535434fe3993c98abc1c5933c8e37e7ecf105c4";
    assert_eq!(sealed[0], auth::VERSION);
    assert_eq!(hex(&sealed[1..33]), tag);
    assert_eq!(&sealed[33..], b"hello");
    assert_eq!(auth.open(&sealed), Ok(&b"hello"[..]));

    let insecure = Auth::insecure().seal(b"hello");
    let tag = "a220cc7bd1da21b7a7397a4d1f264b046dcc18b726251116e46044daa40e60be";
    assert_eq!(hex(&insecure[1..33]), tag);
}

#[test]
fn framing_rejects_wrong_key_version_and_short_datagrams() {
    use auth::Rejected;
    let auth = Auth::secret(b"0123456789abcdef").unwrap();
    let other = Auth::secret(b"fedcba9876543210").unwrap();
    let sealed = auth.seal(b"payload");
    assert_eq!(other.open(&sealed), Err(Rejected::BadAuth));
    assert_eq!(Auth::insecure().open(&sealed), Err(Rejected::BadAuth));
    assert_eq!(
        auth.open(&Auth::insecure().seal(b"x")),
        Err(Rejected::BadAuth)
    );
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(auth.open(&flipped), Err(Rejected::BadAuth));
    let mut version = sealed.clone();
    version[0] = 2;
    assert_eq!(auth.open(&version), Err(Rejected::Malformed));
    assert_eq!(auth.open(&[]), Err(Rejected::Malformed));
    for cut in 1..auth::OVERHEAD {
        assert_eq!(auth.open(&sealed[..cut]), Err(Rejected::BadAuth), "{cut}");
    }
    // An empty payload with a valid tag is authentic (foca then rejects it).
    assert_eq!(auth.open(&auth.seal(b"")), Ok(&b""[..]));
}

#[test]
fn secrets_are_mandatory_and_never_printed() {
    assert_eq!(Auth::secret(b"short").unwrap_err(), AuthError::TooShort(5));
    let auth = Auth::secret(b"a-secret-that-must-not-leak").unwrap();
    let shown = format!("{auth:?}");
    assert!(!shown.contains("leak"), "{shown}");
    assert!(!auth.is_insecure() && Auth::insecure().is_insecure());
}

#[test]
fn membership_refuses_bad_identity_and_timing() {
    let make = |node: &str, a: &str, timing: Timing| {
        Membership::new(id(node, a, 1), Auth::insecure(), timing, 1).map(|_| ())
    };
    let ok = "192.0.2.1:7946";
    assert!(make("n", ok, Timing::default()).is_ok());
    assert!(matches!(
        make("", ok, Timing::default()),
        Err(GossipError::NodeName(_))
    ));
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert!(matches!(
        make(&long, ok, Timing::default()),
        Err(GossipError::NodeName(_))
    ));
    for a in ["0.0.0.0:7946", "192.0.2.1:0", "[::]:7946"] {
        assert!(
            matches!(
                make("n", a, Timing::default()),
                Err(GossipError::Address(_))
            ),
            "{a}"
        );
    }
    let rtt = Timing {
        probe_rtt: Duration::from_millis(100),
        ..Timing::default()
    };
    assert!(matches!(make("n", ok, rtt), Err(GossipError::Timing(_))));
    let fanout = Timing {
        seed_fanout: 0,
        ..Timing::default()
    };
    assert!(matches!(make("n", ok, fanout), Err(GossipError::Timing(_))));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
