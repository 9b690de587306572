//! Names and labels of the status objects: valid for Kubernetes whatever the Service and
//! node names are, and the same in every speaker and every version.

use ferrolb_shared::alloc::ServiceKey;
use ferrolb_shared::config::{LABEL_NODE, LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// The longest names Kubernetes accepts: a DNS-1123 subdomain, a label value.
pub const MAX_NAME: usize = 253;
pub const MAX_LABEL_VALUE: usize = 63;

/// `name` made a DNS-1123 label: lowercase ASCII letters, digits and `-`, starting and ending
/// with a letter or digit (no length limit here).
fn label_chars(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

/// `name` made a DNS-1123 subdomain: dot-separated labels (no length limit here).
fn subdomain_chars(name: &str) -> String {
    name.split('.')
        .map(label_chars)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// A short hash of `parts`, the same in every speaker and every version (FNV-1a, 32 bits
/// folded from 64, as 8 hex digits).
fn short_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\0").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", ((h >> 32) as u32) ^ (h as u32))
}

/// `candidate` when it is exactly what was asked for and fits in `max`; otherwise its first
/// characters (ending with a letter or digit) and a hash of `parts`, so that different inputs
/// still give different names.
fn fit(candidate: String, exact: bool, max: usize, parts: &[&str]) -> String {
    if exact && candidate.len() <= max && !candidate.is_empty() {
        return candidate;
    }
    let hash = short_hash(parts);
    let keep = max - hash.len() - 1;
    let start = candidate.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut prefix: String = start.chars().take(keep).collect();
    while prefix.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        prefix.pop();
    }
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The name of the status object of `service` written by `node`: `<service>.<node>`, a
/// valid DNS-1123 subdomain of at most [`MAX_NAME`] characters. Service names have no dots
/// (they are DNS-1035 labels), so the first dot separates the two and no two (Service, node)
/// pairs share a name. Anything that had to be changed or cut gets a stable hash suffix.
pub fn object_name(service: &str, node: &str) -> String {
    let (s, n) = (label_chars(service), subdomain_chars(node));
    let exact = s == service && n == node && !s.is_empty() && !n.is_empty();
    fit(format!("{s}.{n}"), exact, MAX_NAME, &[service, node])
}

/// `value` as a label value (at most [`MAX_LABEL_VALUE`] characters of letters, digits, `-`,
/// `_` and `.`, beginning and ending with a letter or digit): unchanged when it already is one,
/// otherwise cut and given a stable hash suffix. Node names can be longer than a label value.
pub fn label_value(value: &str) -> String {
    let mapped: String = value
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let exact = trimmed == value;
    fit(trimmed.to_string(), exact, MAX_LABEL_VALUE, &[value])
}

/// The label selector of the objects `node` writes.
pub fn node_selector(node: &str) -> String {
    format!("{LABEL_NODE}={}", label_value(node))
}

/// The metadata of the status object of `service` written by `node`: its name, namespace,
/// labels, and the Service as owner when its uid is known.
pub fn object_meta(node: &str, service: &ServiceKey, uid: Option<String>) -> ObjectMeta {
    let labels = BTreeMap::from([
        (LABEL_NODE.to_string(), label_value(node)),
        (LABEL_SERVICE_NAME.to_string(), label_value(&service.name)),
        (
            LABEL_SERVICE_NAMESPACE.to_string(),
            label_value(&service.namespace),
        ),
    ]);
    let owner = uid.map(|uid| OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.name.clone(),
        uid,
        ..Default::default()
    });
    ObjectMeta {
        name: Some(object_name(&service.name, node)),
        namespace: Some(service.namespace.clone()),
        labels: Some(labels),
        owner_references: owner.map(|o| vec![o]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kubernetes' DNS-1123 subdomain rule (`IsDNS1123Subdomain`).
    fn is_subdomain(s: &str) -> bool {
        s.len() <= MAX_NAME
            && !s.is_empty()
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    }

    /// Kubernetes' label value rule (`IsValidLabelValue`), non-empty.
    fn is_label_value(s: &str) -> bool {
        (1..=MAX_LABEL_VALUE).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    }

    #[test]
    fn names_are_service_dot_node_when_valid() {
        assert_eq!(object_name("web", "node1"), "web.node1");
        assert_eq!(
            object_name("web", "ip-10-0-0-1.eu-west-1.compute.internal"),
            "web.ip-10-0-0-1.eu-west-1.compute.internal"
        );
        // With a dash as the separator these two would collide.
        assert_ne!(object_name("a-b", "c"), object_name("a", "b-c"));
    }

    #[test]
    fn names_are_sanitized_and_cut_with_a_stable_hash() {
        let long_node = format!("{}.example.com", "n".repeat(240));
        let cases = [
            ("Web", "Node_1"),
            ("web", "-node..one-"),
            ("", ""),
            ("web", &long_node),
            (&"s".repeat(63), &long_node),
            ("--", "é"),
        ];
        for (service, node) in cases {
            let name = object_name(service, node);
            assert!(is_subdomain(&name), "{service:?} {node:?} gave {name:?}");
            assert_eq!(name, object_name(service, node), "stable");
        }
        assert!(object_name("Web", "Node_1").starts_with("web.node-1-"));
        // Cut names still differ when their inputs do.
        let a = object_name("web", &format!("{long_node}a"));
        let b = object_name("web", &format!("{long_node}b"));
        assert_ne!(a, b);
        assert_eq!(a.len(), MAX_NAME);
        // Pinned: the hash must not change between versions (every name would churn).
        assert_eq!(object_name("Web", "Node_1"), "web.node-1-63c80d0e");
        assert_ne!(short_hash(&["web", "node1"]), short_hash(&["webn", "ode1"]));
    }

    #[test]
    fn label_values_fit_and_stay_stable() {
        assert_eq!(label_value("node1"), "node1");
        assert_eq!(label_value("Node_1.a"), "Node_1.a");
        let long = format!("{}.example.com", "n".repeat(70));
        let v = label_value(&long);
        assert!(is_label_value(&v), "{v:?}");
        assert!(v.starts_with("nnnn"));
        assert_eq!(v, label_value(&long));
        assert_ne!(v, label_value(&format!("{long}x")));
        for odd in ["", "-x-", "a b", "é"] {
            assert!(is_label_value(&label_value(odd)), "{odd:?}");
        }
        assert_eq!(node_selector("node1"), "ferrolb.io/node=node1");
    }
}
