//! Netlink framing (linux/netlink.h): messages and attributes, written and walked. Shared by
//! the speaker's two netlink users, the link dump behind layer 2's carrier watch (rtnetlink)
//! and the nftables element writer (nfnetlink, `ipvs::nft::netlink`). Pure bytes; the callers
//! own the sockets. Integers are in host order, as netlink has them.

/// A message header: length, type, flags, sequence number, port id.
pub const HEADER_LEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CREATE: u16 = 0x400;
/// Marks an attribute whose payload is attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// Clears `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` from an attribute type.
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// One message of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// What follows the header, up to the message's length.
    pub body: &'a [u8],
}

impl Message<'_> {
    /// For an `NLMSG_ERROR`: its code, 0 for an acknowledgement, else a negative errno.
    /// `None` for other messages, or one too short to hold a code.
    pub fn error_code(&self) -> Option<i32> {
        (self.kind == NLMSG_ERROR)
            .then(|| u32_at(self.body, 0).map(|c| c as i32))
            .flatten()
    }
}

/// The messages of a datagram, in order; a malformed one ends the walk with an error (the
/// length it announces is followed, never trusted past the end).
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, &'static str>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let header = (
            u32_at(rest, 0),
            u16_at(rest, 4),
            u16_at(rest, 6),
            u32_at(rest, 8),
        );
        let (Some(len), Some(kind), Some(flags), Some(seq)) = header else {
            rest = &[];
            return Some(Err("short netlink header"));
        };
        let len = len as usize;
        if len < HEADER_LEN || len > rest.len() {
            rest = &[];
            return Some(Err("netlink message length out of bounds"));
        }
        let body = &rest[HEADER_LEN..len];
        rest = rest.get(align4(len)..).unwrap_or_default();
        Some(Ok(Message {
            kind,
            flags,
            seq,
            body,
        }))
    })
}

/// The attributes in `buf` as (type without flags, payload); a malformed one ends the walk
/// with an error. Fewer than 4 bytes left over are padding.
pub fn attributes(buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), &'static str>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let (len, kind) = (u16_at(rest, 0)?, u16_at(rest, 2)?);
        let len = usize::from(len);
        if len < 4 || len > rest.len() {
            rest = &[];
            return Some(Err("netlink attribute length out of bounds"));
        }
        let value = &rest[4..len];
        rest = rest.get(align4(len)..).unwrap_or_default();
        Some(Ok((kind & NLA_TYPE_MASK, value)))
    })
}

/// Appends a message (header, `body`, padding); the port id is 0, the kernel's.
pub fn push_message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, body: &[u8]) {
    out.extend(((HEADER_LEN + body.len()) as u32).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(flags.to_ne_bytes());
    out.extend(seq.to_ne_bytes());
    out.extend(0u32.to_ne_bytes());
    out.extend(body);
    out.resize(align4(out.len()), 0);
}

/// Appends an attribute (length, type, payload, padding).
pub fn push_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    out.extend(((4 + payload.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(payload);
    out.resize(align4(out.len()), 0);
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `n` rounded up to netlink's 4-byte alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_and_attributes_read_back_what_was_written() {
        let mut body = Vec::new();
        push_attr(&mut body, 3, b"eth0\0");
        push_attr(&mut body, 16 | NLA_F_NESTED, &[6]);
        let mut datagram = Vec::new();
        push_message(&mut datagram, 16, NLM_F_REQUEST, 7, &body);
        push_message(&mut datagram, NLMSG_ERROR, 0, 8, &(-2i32).to_ne_bytes());
        let read: Vec<_> = messages(&datagram).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            (read[0].kind, read[0].flags, read[0].seq),
            (16, NLM_F_REQUEST, 7)
        );
        assert_eq!(read[0].body, &body[..]);
        assert_eq!(read[0].error_code(), None);
        assert_eq!(read[1].error_code(), Some(-2));
        let attrs: Vec<_> = attributes(read[0].body).collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs, [(3, &b"eth0\0"[..]), (16, &[6][..])]);
    }

    #[test]
    fn malformed_input_ends_the_walk_with_an_error() {
        let mut datagram = Vec::new();
        push_message(&mut datagram, NLMSG_DONE, 0, 1, &[0; 4]);
        let mut cut = datagram.clone();
        cut.truncate(10);
        assert_eq!(
            messages(&cut).collect::<Vec<_>>(),
            [Err("short netlink header")]
        );
        datagram[0] = 200; // longer than the datagram
        let all: Vec<_> = messages(&datagram).collect();
        assert_eq!(all, [Err("netlink message length out of bounds")]);
        assert_eq!(
            attributes(&[200, 0, 1, 0]).collect::<Vec<_>>(),
            [Err("netlink attribute length out of bounds")]
        );
        // An error message too short for its code has none.
        let mut short = Vec::new();
        push_message(&mut short, NLMSG_ERROR, 0, 1, &[]);
        assert_eq!(messages(&short).next().unwrap().unwrap().error_code(), None);
    }

    proptest! {
        /// Any bytes: the walks end (each step consumes at least a header or an
        /// attribute header) and never panic.
        #[test]
        fn walks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert!(messages(&bytes).count() <= bytes.len() / HEADER_LEN + 1);
            prop_assert!(attributes(&bytes).count() <= bytes.len() / 4 + 1);
        }
    }
}
