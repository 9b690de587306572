//! TCP-MD5 signatures (RFC 2385) for BGP sessions with a `password`: the kernel signs every
//! segment to the peer and drops unsigned or wrongly signed ones from it, so a peer with
//! another password never gets past the SYN.
//!
//! The key is per socket and per peer address: set on the outbound socket before `connect`
//! (so the SYN is signed) and on each listening socket for every peer with a password (so
//! that peer's connections in are checked; Linux copies the key to the accepted socket).
//!
//! Neither `socket2` nor `rustix` wraps `TCP_MD5SIG`, so this module is the one place in the
//! workspace allowed `unsafe`: a single `setsockopt` call with the `linux/tcp.h` struct.
#![allow(unsafe_code)]

use ferrolb_shared::config::validate::Peer;
use ferrolb_shared::snapshot::Snapshot;
use socket2::{SockAddr, SockAddrStorage};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;

/// `TCP_MD5SIG_MAXKEYLEN` of `linux/tcp.h` (the `libc` crate exports it for some C
/// libraries only).
pub const MAX_KEY_LEN: usize = 80;
/// The Secret key holding the password (a `kubernetes.io/basic-auth` Secret, as MetalLB).
pub const SECRET_KEY: &str = "password";

/// A TCP-MD5 key of 1 to [`MAX_KEY_LEN`] bytes. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Arc<[u8]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

/// Why a peer's password cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The kernel takes at most 80 bytes; a shorter key would not match the peer's.
    #[error("BGPPeer {peer}: {field} is {len} bytes long; TCP-MD5 keys are at most 80 bytes")]
    TooLong {
        peer: String,
        field: String,
        len: usize,
    },
    /// `passwordSecret` names a Secret the speaker does not see (it reads its own namespace).
    #[error("BGPPeer {peer}: spec.passwordSecret: no Secret {secret:?} in the speaker's view")]
    NoSecret { peer: String, secret: String },
    /// The Secret lacks the `password` key.
    #[error("BGPPeer {peer}: spec.passwordSecret: Secret {secret:?} has no key \"password\"")]
    NoPasswordKey { peer: String, secret: String },
}

impl Key {
    /// `None` for an empty password (no signing, as MetalLB), else the key if it fits.
    fn new(bytes: &[u8], peer: &str, field: &str) -> Result<Option<Key>, KeyError> {
        match bytes.len() {
            0 => Ok(None),
            len if len > MAX_KEY_LEN => Err(KeyError::TooLong {
                peer: peer.into(),
                field: field.into(),
                len,
            }),
            _ => Ok(Some(Key(bytes.into()))),
        }
    }
}

/// The key of `peer`: its `password`, or the `password` key of its `passwordSecret` (found by
/// name, and by namespace when the reference gives one: the speaker only sees its own).
pub fn key_of(snapshot: &Snapshot, peer: &Peer) -> Result<Option<Key>, KeyError> {
    if let Some(p) = &peer.spec.password {
        return Key::new(p.as_bytes(), &peer.name, "spec.password");
    }
    let Some(r) = &peer.spec.password_secret else {
        return Ok(None);
    };
    let secret = snapshot
        .secrets
        .iter()
        .find(|(k, _)| k.name == r.name && r.namespace.as_ref().is_none_or(|n| *n == k.namespace))
        .map(|(_, s)| s)
        .ok_or_else(|| KeyError::NoSecret {
            peer: peer.name.clone(),
            secret: r.name.clone(),
        })?;
    // `data` is what the API server returns; `stringData` only appears in manifests read
    // from a directory (standalone mode), where nothing merges it into `data`.
    let data = secret.data.as_ref().and_then(|d| d.get(SECRET_KEY));
    let string = secret.string_data.as_ref().and_then(|d| d.get(SECRET_KEY));
    let bytes = match (data, string) {
        (Some(b), _) => b.0.as_slice(),
        (None, Some(s)) => s.as_bytes(),
        (None, None) => {
            return Err(KeyError::NoPasswordKey {
                peer: peer.name.clone(),
                secret: r.name.clone(),
            });
        }
    };
    Key::new(
        bytes,
        &peer.name,
        &format!("Secret {:?} key password", r.name),
    )
}

/// `struct tcp_md5sig` of `linux/tcp.h`. The address is a `sockaddr_storage`; socket2's
/// `SockAddrStorage` is `repr(transparent)` over it and can be built without `unsafe`.
#[repr(C)]
struct TcpMd5Sig {
    addr: SockAddrStorage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

// The layout the kernel reads (it copies exactly this many bytes).
const _: () = {
    assert!(size_of::<TcpMd5Sig>() == 216);
    assert!(std::mem::offset_of!(TcpMd5Sig, flags) == 128);
    assert!(std::mem::offset_of!(TcpMd5Sig, keylen) == 130);
    assert!(std::mem::offset_of!(TcpMd5Sig, ifindex) == 132);
    assert!(std::mem::offset_of!(TcpMd5Sig, key) == 136);
};

/// Signs the socket's segments to and from `peer` with `key`; `None` removes the key.
/// `peer` must be of the socket's family.
pub fn set(socket: BorrowedFd<'_>, peer: IpAddr, key: Option<&Key>) -> std::io::Result<()> {
    let mut bytes = [0u8; MAX_KEY_LEN];
    let len = match key {
        Some(k) => {
            // Keys are checked on creation; `get_mut` keeps this panic-free regardless.
            let dst = bytes.get_mut(..k.0.len()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "TCP-MD5 key too long")
            })?;
            dst.copy_from_slice(&k.0);
            k.0.len()
        }
        None => 0, // keylen 0: delete this address's key
    };
    let sig = TcpMd5Sig {
        addr: SockAddr::from(SocketAddr::new(peer, 0)).as_storage(),
        flags: 0,
        prefixlen: 0,
        keylen: len as u16, // at most MAX_KEY_LEN
        ifindex: 0,
        key: bytes,
    };
    let size = size_of::<TcpMd5Sig>() as libc::socklen_t;
    // SAFETY: `socket` is an open descriptor borrowed for the duration of the call; `sig` is a
    // fully initialised `#[repr(C)]` value whose layout matches `struct tcp_md5sig` (checked
    // at compile time above), it lives across the call, and `size` is exactly its size, so
    // the kernel reads only memory we own. setsockopt does not keep the pointer.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            std::ptr::from_ref(&sig).cast::<libc::c_void>(),
            size,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    // Deleting a key that was never set is not an error worth reporting.
    if key.is_none() && e.raw_os_error() == Some(libc::ENOENT) {
        return Ok(());
    }
    Err(e)
}

/// Brings a listening socket's keys from `have` to `want`, for the peers of its family (a
/// socket of one family cannot hold keys of the other). `have` ends up with what succeeded.
pub fn sync(
    socket: &impl AsFd,
    v4: bool,
    have: &mut BTreeMap<IpAddr, Key>,
    want: &BTreeMap<IpAddr, Key>,
) {
    let gone: Vec<IpAddr> = have
        .keys()
        .filter(|a| !want.contains_key(a))
        .copied()
        .collect();
    for peer in gone {
        if let Err(e) = set(socket.as_fd(), peer, None) {
            tracing::warn!(%peer, "cannot remove the TCP-MD5 key from a BGP listener: {e}");
        }
        have.remove(&peer);
    }
    for (peer, key) in want.iter().filter(|(a, _)| a.is_ipv4() == v4) {
        if have.get(peer) == Some(key) {
            continue;
        }
        match set(socket.as_fd(), *peer, Some(key)) {
            Ok(()) => {
                have.insert(*peer, key.clone());
            }
            Err(e) => {
                // The peer's signed SYNs will be dropped: say why.
                tracing::error!(%peer, "cannot set the TCP-MD5 key on a BGP listener: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_not_truncated() {
        assert_eq!(Key::new(b"", "p", "spec.password"), Ok(None));
        assert!(
            Key::new(&[b'x'; 80], "p", "spec.password")
                .unwrap()
                .is_some()
        );
        let e = Key::new(&[b'x'; 81], "p", "spec.password").unwrap_err();
        assert!(e.to_string().contains("81 bytes"), "{e}");
        let k = Key::new(b"secret", "p", "f").unwrap().unwrap();
        assert_eq!(format!("{k:?}"), "Key(6 bytes)");
    }

    fn peer(password: Option<&str>, secret: Option<&str>) -> Peer {
        use ferrolb_shared::config::types::{BGPPeerSpec, SecretReference};
        let d = std::time::Duration::from_secs(1);
        Peer {
            name: "r".into(),
            spec: BGPPeerSpec {
                password: password.map(String::from),
                password_secret: secret.map(|n| SecretReference {
                    name: n.into(),
                    namespace: None,
                }),
                ..Default::default()
            },
            peer_address: None,
            source_address: None,
            hold_time: d,
            keepalive_time: d,
            connect_time: d,
            router_id: None,
        }
    }

    fn with_secret(name: &str, data: Option<&[u8]>, string: Option<&str>) -> Snapshot {
        use k8s_openapi::api::core::v1::Secret;
        let secret = Secret {
            data: data.map(|d| [(SECRET_KEY.into(), k8s_openapi::ByteString(d.to_vec()))].into()),
            string_data: string.map(|s| [(SECRET_KEY.into(), s.into())].into()),
            ..Default::default()
        };
        let mut snapshot = Snapshot::default();
        let key = ferrolb_shared::cluster::ObjectKey::new("ferrolb-system", name);
        snapshot.secrets.insert(key, Arc::new(secret));
        snapshot
    }

    #[test]
    fn the_key_comes_from_the_field_or_the_secret() {
        let key = |b: &[u8]| Some(Key(b.into()));
        let none = Snapshot::default();
        assert_eq!(key_of(&none, &peer(Some("pw"), None)), Ok(key(b"pw")));
        assert_eq!(key_of(&none, &peer(None, None)), Ok(None));
        let s = with_secret("md5", Some(b"from-data"), Some("from-string"));
        assert_eq!(key_of(&s, &peer(None, Some("md5"))), Ok(key(b"from-data")));
        let s = with_secret("md5", None, Some("from-string"));
        assert_eq!(
            key_of(&s, &peer(None, Some("md5"))),
            Ok(key(b"from-string"))
        );
        assert!(matches!(
            key_of(&s, &peer(None, Some("other"))),
            Err(KeyError::NoSecret { .. })
        ));
        let s = with_secret("md5", None, None);
        assert!(matches!(
            key_of(&s, &peer(None, Some("md5"))),
            Err(KeyError::NoPasswordKey { .. })
        ));
        let s = with_secret("md5", Some(&[b'x'; 81]), None);
        assert!(matches!(
            key_of(&s, &peer(None, Some("md5"))),
            Err(KeyError::TooLong { len: 81, .. })
        ));
    }

    #[test]
    fn setting_and_removing_a_key_on_a_socket() {
        // A socket that is never connected or bound: nothing leaves the process.
        for peer in ["192.0.2.1", "2001:db8::1"] {
            let peer: IpAddr = peer.parse().unwrap();
            let domain = socket2::Domain::for_address(SocketAddr::new(peer, 0));
            let s = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
            let key = Key::new(b"lab", "p", "f").unwrap();
            match set(s.as_fd(), peer, key.as_ref()) {
                // Kernels built without CONFIG_TCP_MD5SIG.
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => return,
                r => r.unwrap(),
            }
            set(s.as_fd(), peer, None).unwrap();
            set(s.as_fd(), peer, None).unwrap(); // already gone: fine
        }
    }
}
