//! The speaker's gossip identity and foca's wire codec (inside the authenticated framing).
//!
//! Everything is big-endian and length-checked; decoding hostile bytes returns an error and
//! never panics or allocates more than the datagram holds.
//!
//! ```text
//! identity := family(u8: 4|6) ip(4|16) port(u16) boot(u64) name_len(u8) name(utf-8)
//! header   := src:identity src_incarnation(u16) dst:identity message
//! message  := 0 Ping probe(u8) | 1 Ack probe(u8)
//!           | 2 PingReq target:identity probe(u8) | 3 IndirectPing origin:identity probe(u8)
//!           | 4 IndirectAck target:identity probe(u8) | 5 ForwardedAck origin:identity probe(u8)
//!           | 6 Announce | 7 Feed | 8 Gossip | 9 Broadcast | 10 TurnUndead
//! member   := identity incarnation(u16) state(u8: 0 alive, 1 suspect, 2 down)
//! ```
//!
//! foca frames the rest: after the header, an optional `u16` count of members, the members,
//! and the custom broadcasts (length-prefixed planned-restart notices, see [`super::restart`]).

use bytes::{Buf, BufMut};
use foca::{Header, Identity, Member, Message, State};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest node name (a DNS subdomain, as Kubernetes allows).
pub const MAX_NAME_LEN: usize = 253;

/// One incarnation of a speaker: its node, its gossip address (unique in the cluster, what
/// foca calls `Addr`) and a boot number. A speaker that restarts, or that the cluster
/// declared down, comes back with a larger `boot`, which wins over the old identity
/// everywhere (`Identity::win_addr_conflict`), so it rejoins at once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub node: String,
    pub addr: SocketAddr,
    pub boot: u64,
}

impl Identity for NodeId {
    type Addr = SocketAddr;

    /// The renewed boot is the wall-clock time (ms since the epoch), as a new start's is: the
    /// speaker came back from being declared dead, and every member holds it down until
    /// `boot + hold-down` (`l2::handover::LivenessView`), so all of them must see the same
    /// start. This is the gossip core's one clock read: foca asks for the renewed identity
    /// synchronously, in the middle of handling a datagram.
    fn renew(&self) -> Option<Self> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Some(NodeId {
            node: self.node.clone(),
            addr: self.addr,
            boot: self.boot.wrapping_add(1).max(now),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Newer boot wins; the name only breaks ties between misconfigured twins, so that
        // every member still makes the same choice.
        (self.boot, &self.node) > (adversary.boot, &adversary.node)
    }
}

/// Why bytes could not be decoded (or an item did not fit the buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("truncated")]
    Truncated,
    #[error("unknown address family {0}")]
    Family(u8),
    #[error("node name is not UTF-8")]
    Name,
    #[error("unknown message kind {0}")]
    MessageKind(u8),
    #[error("unknown member state {0}")]
    State(u8),
    #[error("no room left in the packet")]
    Full,
}

/// foca's codec for [`NodeId`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WireCodec;

impl foca::Codec<NodeId> for WireCodec {
    type Error = CodecError;

    fn encode_header(
        &mut self,
        header: &Header<NodeId>,
        buf: impl BufMut,
    ) -> Result<(), CodecError> {
        let mut out = Vec::with_capacity(128);
        put_id(&mut out, &header.src);
        out.extend_from_slice(&header.src_incarnation.to_be_bytes());
        put_id(&mut out, &header.dst);
        put_message(&mut out, &header.message);
        put_all(buf, &out)
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<NodeId>, CodecError> {
        let mut r = Reader(buf.chunk());
        let start = r.0.len();
        let header = Header {
            src: r.id()?,
            src_incarnation: r.u16()?,
            dst: r.id()?,
            message: r.message()?,
        };
        buf.advance(start - r.0.len());
        Ok(header)
    }

    fn encode_member(
        &mut self,
        member: &Member<NodeId>,
        buf: impl BufMut,
    ) -> Result<(), CodecError> {
        let mut out = Vec::with_capacity(64);
        put_member(&mut out, member);
        put_all(buf, &out)
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<NodeId>, CodecError> {
        let mut r = Reader(buf.chunk());
        let start = r.0.len();
        let member = r.member()?;
        buf.advance(start - r.0.len());
        Ok(member)
    }
}

/// Write all of `bytes` or nothing (foca requires a clean buffer when an item does not fit).
fn put_all(mut buf: impl BufMut, bytes: &[u8]) -> Result<(), CodecError> {
    if buf.remaining_mut() < bytes.len() {
        return Err(CodecError::Full);
    }
    buf.put_slice(bytes);
    Ok(())
}

pub(crate) fn put_id(out: &mut Vec<u8>, id: &NodeId) {
    match id.addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&id.addr.port().to_be_bytes());
    out.extend_from_slice(&id.boot.to_be_bytes());
    // Names are checked against MAX_NAME_LEN when the membership is built; a longer one
    // (never produced here) is cut at a character boundary rather than mis-framed.
    let mut name = id.node.as_str();
    while name.len() > MAX_NAME_LEN {
        let mut end = MAX_NAME_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name = &name[..end];
    }
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

fn put_message(out: &mut Vec<u8>, message: &Message<NodeId>) {
    let (kind, id, probe) = match message {
        Message::Ping(p) => (0, None, Some(*p)),
        Message::Ack(p) => (1, None, Some(*p)),
        Message::PingReq {
            target,
            probe_number,
        } => (2, Some(target), Some(*probe_number)),
        Message::IndirectPing {
            origin,
            probe_number,
        } => (3, Some(origin), Some(*probe_number)),
        Message::IndirectAck {
            target,
            probe_number,
        } => (4, Some(target), Some(*probe_number)),
        Message::ForwardedAck {
            origin,
            probe_number,
        } => (5, Some(origin), Some(*probe_number)),
        Message::Announce => (6, None, None),
        Message::Feed => (7, None, None),
        Message::Gossip => (8, None, None),
        Message::Broadcast => (9, None, None),
        Message::TurnUndead => (10, None, None),
    };
    out.push(kind);
    if let Some(id) = id {
        put_id(out, id);
    }
    if let Some(probe) = probe {
        out.push(probe);
    }
}

pub(crate) fn put_member(out: &mut Vec<u8>, member: &Member<NodeId>) {
    put_id(out, member.id());
    out.extend_from_slice(&member.incarnation().to_be_bytes());
    out.push(match member.state() {
        State::Alive => 0,
        State::Suspect => 1,
        State::Down => 2,
    });
}

/// A bounds-checked cursor over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn id(&mut self) -> Result<NodeId, CodecError> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            other => return Err(CodecError::Family(other)),
        };
        let port = self.u16()?;
        let boot = u64::from_be_bytes(self.array()?);
        let len = usize::from(self.u8()?);
        let name = std::str::from_utf8(self.take(len)?).map_err(|_| CodecError::Name)?;
        Ok(NodeId {
            node: name.to_owned(),
            addr: SocketAddr::new(ip, port),
            boot,
        })
    }

    fn message(&mut self) -> Result<Message<NodeId>, CodecError> {
        Ok(match self.u8()? {
            0 => Message::Ping(self.u8()?),
            1 => Message::Ack(self.u8()?),
            2 => Message::PingReq {
                target: self.id()?,
                probe_number: self.u8()?,
            },
            3 => Message::IndirectPing {
                origin: self.id()?,
                probe_number: self.u8()?,
            },
            4 => Message::IndirectAck {
                target: self.id()?,
                probe_number: self.u8()?,
            },
            5 => Message::ForwardedAck {
                origin: self.id()?,
                probe_number: self.u8()?,
            },
            6 => Message::Announce,
            7 => Message::Feed,
            8 => Message::Gossip,
            9 => Message::Broadcast,
            10 => Message::TurnUndead,
            other => return Err(CodecError::MessageKind(other)),
        })
    }

    fn member(&mut self) -> Result<Member<NodeId>, CodecError> {
        let id = self.id()?;
        let incarnation = self.u16()?;
        let state = match self.u8()? {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            other => return Err(CodecError::State(other)),
        };
        Ok(Member::new(id, incarnation, state))
    }
}
