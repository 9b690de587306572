//! Which services hold each address, kept small: a million held addresses are a million
//! entries here. Addresses are filed per family under their integer value (a 4-byte key for
//! IPv4 rather than a 17-byte `IpAddr`), and the usual holding, one service without a sharing
//! key, is a single pointer to the key the allocator's entry shares.

use super::pool::ShareTag;
use super::request::{Family, ServiceKey, split_ip};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(super) struct Holders {
    v4: BTreeMap<u32, Holding>,
    v6: BTreeMap<u128, Holding>,
}

impl Holders {
    pub(super) fn get(&self, ip: IpAddr) -> Option<&Holding> {
        match split_ip(ip) {
            (Family::V4, v) => self.v4.get(&(v as u32)),
            (Family::V6, v) => self.v6.get(&v),
        }
    }

    pub(super) fn get_mut(&mut self, ip: IpAddr) -> Option<&mut Holding> {
        match split_ip(ip) {
            (Family::V4, v) => self.v4.get_mut(&(v as u32)),
            (Family::V6, v) => self.v6.get_mut(&v),
        }
    }

    pub(super) fn insert(&mut self, ip: IpAddr, holding: Holding) {
        match split_ip(ip) {
            (Family::V4, v) => self.v4.insert(v as u32, holding),
            (Family::V6, v) => self.v6.insert(v, holding),
        };
    }

    pub(super) fn remove(&mut self, ip: IpAddr) -> Option<Holding> {
        match split_ip(ip) {
            (Family::V4, v) => self.v4.remove(&(v as u32)),
            (Family::V6, v) => self.v6.remove(&v),
        }
    }

    pub(super) fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }
}

/// The services holding one address. When there are several, they all carry the same sharing
/// key and backend, so the tag (key, backend, ports in use) is recorded once; a holder without
/// a sharing key holds its address alone (nobody may join it).
#[derive(Debug)]
pub(super) enum Holding {
    /// One service, no sharing key: the common case, one pointer.
    Alone(Arc<ServiceKey>),
    Shared(Box<Shared>),
}

#[derive(Debug)]
pub(super) struct Shared {
    /// `None` only if services without a sharing key came to hold one address, which the
    /// allocator's sharing rule prevents.
    tag: Option<ShareTag>,
    /// Sorted, no duplicates.
    services: Vec<Arc<ServiceKey>>,
}

impl Holding {
    pub(super) fn new(key: Arc<ServiceKey>, tag: Option<ShareTag>) -> Holding {
        match tag {
            None => Holding::Alone(key),
            Some(tag) => Holding::Shared(Box::new(Shared {
                tag: Some(tag),
                services: vec![key],
            })),
        }
    }

    /// The holders, sorted.
    pub(super) fn services(&self) -> &[Arc<ServiceKey>] {
        match self {
            Holding::Alone(key) => std::slice::from_ref(key),
            Holding::Shared(shared) => &shared.services,
        }
    }

    /// The holders, and the tag to update after a change among them.
    pub(super) fn with_tag_mut(&mut self) -> (&[Arc<ServiceKey>], Option<&mut ShareTag>) {
        match self {
            Holding::Alone(key) => (std::slice::from_ref(key), None),
            Holding::Shared(shared) => (&shared.services, shared.tag.as_mut()),
        }
    }

    pub(super) fn into_tag(self) -> Option<ShareTag> {
        match self {
            Holding::Alone(_) => None,
            Holding::Shared(shared) => shared.tag,
        }
    }

    /// Adds `key` unless it is there already.
    pub(super) fn add(&mut self, key: &Arc<ServiceKey>) {
        if let Holding::Alone(only) = self {
            if only == key {
                return;
            }
            *self = Holding::Shared(Box::new(Shared {
                tag: None,
                services: vec![only.clone()],
            }));
        }
        if let Holding::Shared(shared) = self
            && let Err(at) = shared.services.binary_search(key)
        {
            shared.services.insert(at, key.clone());
        }
    }

    /// Removes `key`; whether it was there. An `Alone` holding is left as it is for the caller
    /// to drop when this returns true.
    pub(super) fn remove(&mut self, key: &ServiceKey) -> bool {
        match self {
            Holding::Alone(only) => **only == *key,
            Holding::Shared(shared) => {
                match shared.services.binary_search_by(|k| k.as_ref().cmp(key)) {
                    Ok(at) => {
                        shared.services.remove(at);
                        true
                    }
                    Err(_) => false,
                }
            }
        }
    }

    /// Whether nobody holds the address any more after `remove` returned true.
    pub(super) fn emptied_by_removal(&self) -> bool {
        match self {
            Holding::Alone(_) => true,
            Holding::Shared(shared) => shared.services.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::request::BackendKey;

    fn key(name: &str) -> Arc<ServiceKey> {
        Arc::new(ServiceKey::new("ns", name))
    }

    #[test]
    fn addresses_of_both_families_are_filed_apart() {
        let mut h = Holders::default();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "::a00:1".parse().unwrap(); // the same low 32 bits
        h.insert(v4, Holding::new(key("a"), None));
        assert!(h.get(v6).is_none());
        h.insert(v6, Holding::new(key("b"), None));
        assert_eq!(h.get(v4).unwrap().services()[0].name, "a");
        assert_eq!(h.get(v6).unwrap().services()[0].name, "b");
        assert!(h.remove(v4).is_some());
        assert!(h.get(v4).is_none() && h.get(v6).is_some());
    }

    #[test]
    fn shared_holders_stay_sorted_and_unique() {
        let tag = ShareTag {
            key: "k".into(),
            backend: BackendKey::Cluster,
            ports: vec![],
        };
        let mut h = Holding::new(key("m"), Some(tag));
        for name in ["z", "a", "m", "a"] {
            h.add(&key(name));
        }
        let names: Vec<&str> = h.services().iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a", "m", "z"]);
        assert!(h.with_tag_mut().1.is_some());
        assert!(!h.remove(&ServiceKey::new("ns", "q")));
        assert!(h.remove(&ServiceKey::new("ns", "m")));
        assert!(!h.emptied_by_removal());
        assert!(h.remove(&ServiceKey::new("ns", "a")) && h.remove(&ServiceKey::new("ns", "z")));
        assert!(h.emptied_by_removal());
        assert!(h.into_tag().is_some());
    }

    #[test]
    fn a_lone_holder_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Holding>(), 16);
        let mut h = Holding::new(key("a"), None);
        h.add(&key("a"));
        assert!(matches!(h, Holding::Alone(_)));
        assert!(!h.remove(&ServiceKey::new("ns", "b")));
        assert!(h.remove(&ServiceKey::new("ns", "a")) && h.emptied_by_removal());
    }
}
