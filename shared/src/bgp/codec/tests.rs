//! Tests of the BGP codec.
//!
//! `vectors.rs` holds real messages captured from BIRD 2.0.12, FRR (bgpd) and GoBGP 3.10.0
//! talking to each other over a veth pair between two network namespaces (192.0.2.1 /
//! 2001:db8::1 = BIRD or FRR, 192.0.2.2 / 2001:db8::2 = GoBGP), read from a tcpdump capture:
//! bytes other implementations wrote, not output of this code. `errors.rs` walks every
//! error path and its NOTIFICATION, `props.rs` holds the property tests, `pack.rs` the
//! sender's packing, and `oracle.rs` checks our decoder against `bgp-rs`, an independent
//! implementation, and pins what `bgp-rs` gets wrong.

mod errors;
mod oracle;
mod pack;
mod props;
mod vectors;

use super::{CodecOptions, Message, decode, encode};

/// A session that negotiated 4-octet AS numbers, as every session with a modern peer does.
const FOUR: CodecOptions = CodecOptions {
    four_octet_as: true,
};
/// A session that did not (or the OPEN exchange, before it is known).
const TWO: CodecOptions = CodecOptions {
    four_octet_as: false,
};

/// Decodes hex, ignoring whitespace and `|` (which only group fields for the reader).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'|')
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// The all-ones marker followed by `rest` (length, type, body) in hex.
fn msg(rest: &str) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend(hex(rest));
    m
}

/// A message of `message_type` around `body`, with the right length.
fn frame(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    m.push(message_type);
    m.extend_from_slice(body);
    m
}

/// An UPDATE body with empty withdrawn routes, `attributes` and `nlri`.
fn update_body(attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&u16::try_from(attributes.len()).unwrap().to_be_bytes());
    b.extend_from_slice(attributes);
    b.extend_from_slice(nlri);
    b
}

/// Decodes `bytes` as exactly one message.
fn decode_one(bytes: &[u8], opts: &CodecOptions) -> Message {
    match decode(bytes, opts) {
        Ok(Some((m, consumed))) => {
            assert_eq!(consumed, bytes.len(), "consumed the whole message");
            m
        }
        other => panic!("{bytes:02x?} did not decode: {other:?}"),
    }
}

/// `decode(encode(m)) == m`.
fn assert_round_trip(m: &Message, opts: &CodecOptions) {
    let bytes = encode(m, opts);
    assert_eq!(&decode_one(&bytes, opts), m, "round trip of {bytes:02x?}");
}

/// Every strict prefix of a valid message is incomplete (`Ok(None)`); every shortened
/// copy whose length field was patched to match decodes or fails, and never panics.
fn assert_truncations(bytes: &[u8], opts: &CodecOptions) {
    for n in 0..bytes.len() {
        assert_eq!(decode(&bytes[..n], opts), Ok(None), "prefix of {n} bytes");
    }
    for n in 19..bytes.len() {
        let mut short = bytes[..n].to_vec();
        short[16..18].copy_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        if let Ok(Some((m, _))) = decode(&short, opts) {
            assert_round_trip(&m, opts);
        }
    }
}
