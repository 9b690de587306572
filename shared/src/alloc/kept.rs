//! What the allocator keeps of each Service's request, compactly.
//!
//! The allocator re-reads a holder's request in two places: on the hot path, when another
//! service asks to share its address or it leaves one (sharing key, backend, ports), and when
//! the pools change (everything, to re-check the assignment). A whole [`ServiceRequest`] is
//! 272 bytes inline with most fields empty, and the key is already the map's; at a million
//! Services that was a third of the allocator's memory, and first-touch page faults were most
//! of its time. So the ports and the family choice are kept inline, the labels as the shared
//! maps they already are (a namespace's, the Service's own) and only when there are any, the
//! rarely set fields (a sharing key, traffic policy Local, requested addresses, a named pool)
//! only when one is set. The previous addresses (the status when the request was made) are
//! not kept: once assigned, the assignment is what a re-check keeps (see [`KeptRequest::
//! to_request`]).

use super::request::{
    BackendKey, Family, FamilyPolicy, Protocol, ServiceKey, ServiceRequest, SharingTerms,
};
use crate::selector::Labels;
use std::net::IpAddr;
use std::sync::Arc;

/// The backend of a request that keeps no other fields.
static CLUSTER: BackendKey = BackendKey::Cluster;

#[derive(Debug)]
pub(super) struct KeptRequest {
    ports: Box<[(Protocol, u16)]>,
    /// `spec.ipFamilies` without repeats: all [`super::request::plan`] reads of it.
    families: [Option<Family>; 2],
    family_policy: FamilyPolicy,
    namespace_labels: Option<Arc<Labels>>,
    service_labels: Option<Arc<Labels>>,
    /// The other fields, when any is not at its default (key, labels, ports, families and
    /// previous addresses left empty in it; an empty sharing key is none, as in
    /// [`ServiceRequest::sharing`]).
    rest: Option<Box<ServiceRequest>>,
}

/// `labels` unless there are none.
fn unless_empty(labels: &Arc<Labels>) -> Option<Arc<Labels>> {
    (!labels.is_empty()).then(|| labels.clone())
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
            previous_ips: _,
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
            && requested_ips.is_empty()
            && requested_pool.is_none();
        let rest = (!plain).then(|| {
            Box::new(ServiceRequest {
                requested_ips: requested_ips.clone(),
                requested_pool: requested_pool.clone(),
                sharing_key: sharing_key.clone().filter(|k| !k.is_empty()),
                backend_key: backend_key.clone(),
                ..ServiceRequest::default()
            })
        });
        KeptRequest {
            ports: ports.as_slice().into(),
            families,
            family_policy: *family_policy,
            namespace_labels: unless_empty(namespace_labels),
            service_labels: unless_empty(service_labels),
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

    /// The request again, as far as the allocator's rules can tell, made when the Service
    /// held `current`: those are its previous addresses (they tell a single-stack Service
    /// without `ipFamilies` its family, as the status did when it was assigned them).
    pub(super) fn to_request(&self, key: &ServiceKey, current: &[IpAddr]) -> ServiceRequest {
        let mut req = match &self.rest {
            Some(rest) => ServiceRequest::clone(rest),
            None => ServiceRequest::default(),
        };
        req.key = key.clone();
        req.previous_ips = current.to_vec();
        if let Some(labels) = &self.namespace_labels {
            req.namespace_labels = labels.clone();
        }
        if let Some(labels) = &self.service_labels {
            req.service_labels = labels.clone();
        }
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
        let back = kept.to_request(&req.key, &[]);
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
            kept.to_request(&request().key, &[]).backend_key,
            request().backend_key
        );
        let req = ServiceRequest {
            namespace_labels: Arc::new([("team".to_string(), "a".to_string())].into()),
            service_labels: Arc::new([("tier".to_string(), "edge".to_string())].into()),
            requested_ips: vec!["10.0.0.1".parse().unwrap()],
            requested_pool: Some("lan".into()),
            previous_ips: vec!["fd00::1".parse().unwrap()],
            families: vec![Family::V4],
            ..request()
        };
        let kept = KeptRequest::new(&req);
        assert!(kept.rest.is_some());
        // The previous addresses are the ones it holds when asked again.
        assert_eq!(kept.to_request(&req.key, &req.previous_ips), req);
        let elsewhere = ["fd00::9".parse().unwrap()];
        assert_eq!(
            kept.to_request(&req.key, &elsewhere).previous_ips,
            elsewhere
        );
        // The labels are the Service's and namespace's own maps, not copies.
        let back = kept.to_request(&req.key, &[]);
        assert!(Arc::ptr_eq(&back.namespace_labels, &req.namespace_labels));
        assert!(Arc::ptr_eq(&back.service_labels, &req.service_labels));
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
        assert_eq!(kept.to_request(&req.key, &[]).sharing_key, None);
    }
}
