//! Any bytes given to the reader of the kernel's nfnetlink replies (what the speaker's element
//! writer receives on its socket): never a panic, and every reply it reports lies within the
//! input (a header's length is followed, never trusted past the end).
#![no_main]

use ferrolb_shared::ipvs::nft::netlink::replies;
use libfuzzer_sys::fuzz_target;

/// A netlink message header: length, type, flags, sequence number, port id.
const HEADER: usize = 16;

fuzz_target!(|data: &[u8]| {
    let found = replies(data);
    // Each reply takes a header and its error code at least.
    assert!(found.len() * (HEADER + 4) <= data.len());
});
