//! Any bytes, as the TCP stream a BGP peer sends (the seeds are messages and whole streams
//! captured from BIRD, FRR and GoBGP): decoded message by message in a framing loop, never a
//! panic. Whatever decodes must encode to no more bytes than it came in and decode back to
//! itself; whatever is refused names a NOTIFICATION of a decoding class.
#![no_main]

use ferrolb_shared::bgp::codec::{CodecOptions, decode, encode, notification::code};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The same bytes on a session with and without 4-octet AS numbers.
    for four_octet_as in [false, true] {
        check(data, &CodecOptions { four_octet_as });
    }
});

fn check(stream: &[u8], opts: &CodecOptions) {
    let mut rest = stream;
    loop {
        match decode(rest, opts) {
            Ok(Some((message, consumed))) => {
                assert!((19..=4096).contains(&consumed) && consumed <= rest.len());
                let bytes = encode(&message, opts);
                assert!(
                    bytes.len() <= consumed,
                    "{message:?} grew to {} bytes",
                    bytes.len()
                );
                match decode(&bytes, opts) {
                    Ok(Some((again, n))) if n == bytes.len() => assert_eq!(again, message),
                    other => {
                        panic!("{message:?} encodes to {bytes:02x?}, which decodes to {other:?}")
                    }
                }
                rest = &rest[consumed..];
            }
            Ok(None) => break,
            Err(e) => {
                assert!(matches!(
                    e.notification.code,
                    code::MESSAGE_HEADER_ERROR
                        | code::OPEN_MESSAGE_ERROR
                        | code::UPDATE_MESSAGE_ERROR
                        | code::ROUTE_REFRESH_MESSAGE_ERROR
                ));
                assert!(!e.to_string().is_empty());
                break;
            }
        }
    }
}
