//! What the allocator keeps of each Service's request, compactly.
//!
//! The allocator re-reads a holder's request in two places: on the hot path, when another
//! service asks to share its address or it leaves one (sharing key, backend, ports), and when
//! the pools change (everything, to re-check the assignment). A whole [`ServiceRequest`] is
//! 272 bytes inline with most fields empty, and the key is already the map's; at a million
//! Services that was a third of the allocator's memory, and first-touch page faults were most
//! of its time. So the ports and the family choice are kept inline, and the rarely set fields
//! (a sharing key, traffic policy Local, labels, requested and previous addresses, a named
//! pool) only when one is set.

use super::request::{
    BackendKey, Family, FamilyPolicy, Protocol, ServiceKey, ServiceRequest, SharingTerms,
};

/// The backend of a request that keeps no other fields.
static CLUSTER: BackendKey = BackendKey::Cluster;

#[derive(Debug)]
pub(super) struct KeptRequest {
    ports: Box<[(Protocol, u16)]>,
    /// `spec.ipFamilies` without repeats: all [`super::request::plan`] reads of it.
    families: [Option<Family>; 2],
    family_policy: FamilyPolicy,
    /// The other fields, when any is not at its default (key, ports and families left empty
    /// in it; an empty sharing key is none, as in [`ServiceRequest::sharing`]).
    rest: Option<Box<ServiceRequest>>,
}

impl KeptRequest {
    pub(super) fn new(req: &ServiceRequest) -> Self {
        // Destructured so that a new request field cannot be forgotten here.
        let ServiceRequest {
            key: _,
            namespace_labels,
            service_labels,
            families: all_families,
            family_policy,
            requested_ips,
            requested_pool,
            sharing_key,
            backend_key,
            ports,
            previous_ips,
        } = req;
        let mut families = [None; 2];
        for &f in all_families {
            if !families.contains(&Some(f))
                && let Some(slot) = families.iter_mut().find(|s| s.is_none())
            {
                *slot = Some(f);
            }
        }
        let plain = req.sharing().is_none()
            && *backend_key == BackendKey::Cluster
            && namespace_labels.is_empty()
            && service_labels.is_empty()
            && requested_ips.is_empty()
            && requested_pool.is_none()
            && previous_ips.is_empty();
        let rest = (!plain).then(|| {
            Box::new(ServiceRequest {
                namespace_labels: namespace_labels.clone(),
                service_labels: service_labels.clone(),
                requested_ips: requested_ips.clone(),
                requested_pool: requested_pool.clone(),
                previous_ips: previous_ips.clone(),
                sharing_key: sharing_key.clone().filter(|k| !k.is_empty()),
                backend_key: backend_key.clone(),
                ..ServiceRequest::default()
            })
        });
        KeptRequest {
            ports: ports.as_slice().into(),
            families,
            family_policy: *family_policy,
            rest,
        }
    }

    pub(super) fn terms(&self) -> SharingTerms<'_> {
        match &self.rest {
            Some(rest) => SharingTerms {
                ports: &self.ports,
                ..rest.terms()
            },
            None => SharingTerms {
                key: None,
                backend: &CLUSTER,
                ports: &self.ports,
            },
        }
    }

    pub(super) fn ports(&self) -> &[(Protocol, u16)] {
        &self.ports
    }

    /// The request again, as far as the allocator's rules can tell.
    pub(super) fn to_request(&self, key: &ServiceKey) -> ServiceRequest {
        let mut req = match &self.rest {
            Some(rest) => ServiceRequest::clone(rest),
            None => ServiceRequest::default(),
        };
        req.key = key.clone();
        req.ports = self.ports.to_vec();
        req.families = self.families.iter().flatten().copied().collect();
        req.family_policy = self.family_policy;
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::request::plan;

    fn request() -> ServiceRequest {
        ServiceRequest {
            key: ServiceKey::new("ns", "web"),
            ports: vec![(Protocol::Tcp, 80), (Protocol::Udp, 53)],
            backend_key: BackendKey::Local("app=web".into()),
            sharing_key: Some("dns".into()),
            family_policy: FamilyPolicy::PreferDualStack,
            families: vec![Family::V6, Family::V6, Family::V4, Family::V6],
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_request_comes_back_whole_without_its_rarely_set_fields() {
        let req = ServiceRequest {
            sharing_key: Some(String::new()),
            backend_key: BackendKey::Cluster,
            ..request()
        };
        let kept = KeptRequest::new(&req);
        assert!(kept.rest.is_none());
        let back = kept.to_request(&req.key);
        assert_eq!(back.families, [Family::V6, Family::V4]);
        assert_eq!(plan(&back), plan(&req));
        assert_eq!(
            ServiceRequest {
                families: req.families.clone(),
                sharing_key: Some(String::new()),
                ..back
            },
            req
        );
        assert_eq!(kept.terms().key, None);
        assert_eq!(*kept.terms().backend, BackendKey::Cluster);
    }

    #[test]
    fn every_other_field_survives() {
        let kept = KeptRequest::new(&request());
        assert_eq!(kept.terms().key, Some("dns"));
        assert_eq!(
            kept.to_request(&request().key).backend_key,
            request().backend_key
        );
        let req = ServiceRequest {
            namespace_labels: [("team".to_string(), "a".to_string())].into(),
            service_labels: [("tier".to_string(), "edge".to_string())].into(),
            requested_ips: vec!["10.0.0.1".parse().unwrap()],
            requested_pool: Some("lan".into()),
            previous_ips: vec!["fd00::1".parse().unwrap()],
            families: vec![Family::V4],
            ..request()
        };
        let kept = KeptRequest::new(&req);
        assert!(kept.rest.is_some());
        assert_eq!(kept.to_request(&req.key), req);
    }

    #[test]
    fn an_empty_sharing_key_is_none() {
        let req = ServiceRequest {
            sharing_key: Some(String::new()),
            ..request()
        };
        let kept = KeptRequest::new(&req);
        assert_eq!(kept.terms().key, None);
        assert_eq!(kept.terms().ports, req.ports.as_slice());
        assert_eq!(kept.to_request(&req.key).sharing_key, None);
    }
}
