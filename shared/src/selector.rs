//! Kubernetes label selectors (`matchLabels` + `matchExpressions`), with the validation the
//! API server applies to them, so a selector that Kubernetes would reject is rejected here too.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels of an object, sorted so that output and hashing are deterministic.
pub type Labels = BTreeMap<String, String>;

/// A `metav1.LabelSelector`. The empty selector matches every object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A selector problem, with the field path relative to the selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub field: String,
    pub message: String,
}

impl LabelSelector {
    /// Whether `labels` satisfies every label and every expression of this selector.
    /// Call [`LabelSelector::validate`] first: an invalid operator never matches.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// True when this selector has no terms and so selects everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Every problem Kubernetes would report for this selector.
    pub fn validate(&self) -> Vec<SelectorError> {
        let mut errors = Vec::new();
        for (k, v) in &self.match_labels {
            if let Err(e) = validate_label_key(k) {
                errors.push(err(
                    format!("matchLabels[{k}]"),
                    format!("invalid key {k:?}: {e}"),
                ));
            }
            if let Err(e) = validate_label_value(v) {
                errors.push(err(
                    format!("matchLabels[{k}]"),
                    format!("invalid value {v:?}: {e}"),
                ));
            }
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            let path = format!("matchExpressions[{i}]");
            if let Err(e) = validate_label_key(&r.key) {
                errors.push(err(
                    format!("{path}.key"),
                    format!("invalid key {:?}: {e}", r.key),
                ));
            }
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => errors.push(err(
                    format!("{path}.values"),
                    format!("operator {} needs at least one value", r.operator),
                )),
                "Exists" | "DoesNotExist" if !r.values.is_empty() => errors.push(err(
                    format!("{path}.values"),
                    format!(
                        "operator {} takes no values, got {:?}",
                        r.operator, r.values
                    ),
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => errors.push(err(
                    format!("{path}.operator"),
                    format!("unknown operator {other:?} (want In, NotIn, Exists or DoesNotExist)"),
                )),
            }
            for (j, v) in r.values.iter().enumerate() {
                if let Err(e) = validate_label_value(v) {
                    errors.push(err(
                        format!("{path}.values[{j}]"),
                        format!("invalid value {v:?}: {e}"),
                    ));
                }
            }
        }
        errors
    }
}

impl LabelSelectorRequirement {
    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator.as_str() {
            "In" => value.is_some_and(|v| self.values.contains(v)),
            "NotIn" => value.is_none_or(|v| !self.values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    }
}

/// A list of selectors as MetalLB uses them: empty means "everything", otherwise any match.
pub fn any_matches(selectors: &[LabelSelector], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

fn err(field: String, message: String) -> SelectorError {
    SelectorError { field, message }
}

/// A qualified name: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters that starts and ends alphanumeric and has `-`, `_`, `.` inside.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        validate_dns_subdomain(p).map_err(|e| format!("prefix: {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must not be empty".into());
    }
    validate_label_value(name)
}

/// A label value: empty, or at most 63 characters, alphanumeric at both ends, with `-`, `_`
/// and `.` allowed inside.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!(
            "must be at most 63 characters, has {}",
            value.len()
        ));
    }
    let bytes = value.as_bytes();
    let Some((first, last)) = bytes.first().zip(bytes.last()) else {
        return Ok(());
    };
    let ok_inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    if !first.is_ascii_alphanumeric()
        || !last.is_ascii_alphanumeric()
        || !bytes.iter().all(ok_inner)
    {
        return Err("must start and end with a letter or digit and contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

/// An RFC 1123 DNS subdomain: lower-case labels of `[a-z0-9-]` joined by dots, at most 253
/// characters. Kubernetes object names use the same rule.
pub fn validate_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "must be at most 253 characters, has {}",
            name.len()
        ));
    }
    for label in name.split('.') {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if !ok {
            return Err("must be lower-case letters, digits, '-' and '.', starting and ending with a letter or digit".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().matches(&labels(&[("a", "b")])));
        assert!(any_matches(&[], &labels(&[])));
    }

    #[test]
    fn match_labels_needs_every_pair() {
        let s = LabelSelector {
            match_labels: labels(&[("app", "web"), ("tier", "front")]),
            match_expressions: vec![],
        };
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "back")])));
    }

    #[test]
    fn operators_follow_kubernetes() {
        let l = labels(&[("env", "prod")]);
        assert!(expr("env", "In", &["prod", "dev"]).matches(&l));
        assert!(!expr("env", "In", &["dev"]).matches(&l));
        assert!(!expr("zone", "In", &["a"]).matches(&l));
        assert!(expr("env", "NotIn", &["dev"]).matches(&l));
        assert!(!expr("env", "NotIn", &["prod"]).matches(&l));
        // NotIn matches objects that lack the key, as in Kubernetes.
        assert!(expr("zone", "NotIn", &["a"]).matches(&l));
        assert!(expr("env", "Exists", &[]).matches(&l));
        assert!(!expr("zone", "Exists", &[]).matches(&l));
        assert!(expr("zone", "DoesNotExist", &[]).matches(&l));
        assert!(!expr("env", "DoesNotExist", &[]).matches(&l));
        assert!(!expr("env", "Bogus", &[]).matches(&l));
    }

    #[test]
    fn any_matches_is_an_or() {
        let sels = [expr("a", "Exists", &[]), expr("b", "Exists", &[])];
        assert!(any_matches(&sels, &labels(&[("b", "1")])));
        assert!(!any_matches(&sels, &labels(&[("c", "1")])));
    }

    #[test]
    fn validation_reports_every_problem() {
        let s = LabelSelector {
            match_labels: labels(&[("-bad", "ok"), ("good", "bad value")]),
            match_expressions: vec![
                LabelSelectorRequirement {
                    key: "k".into(),
                    operator: "In".into(),
                    values: vec![],
                },
                LabelSelectorRequirement {
                    key: "k".into(),
                    operator: "Exists".into(),
                    values: vec!["x".into()],
                },
                LabelSelectorRequirement {
                    key: "k".into(),
                    operator: "Near".into(),
                    values: vec![],
                },
            ],
        };
        let errs = s.validate();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "matchLabels[-bad]",
                "matchLabels[good]",
                "matchExpressions[0].values",
                "matchExpressions[1].values",
                "matchExpressions[2].operator"
            ]
        );
        assert!(errs[4].message.contains("Near"));
    }

    #[test]
    fn keys_and_values() {
        assert!(validate_label_key("kubernetes.io/hostname").is_ok());
        assert!(validate_label_key("app").is_ok());
        assert!(validate_label_key("Example.com/x").is_err());
        assert!(validate_label_key("a/").is_err());
        assert!(validate_label_key(&"x".repeat(64)).is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("a.b-c_d").is_ok());
        assert!(validate_label_value("a.").is_err());
        assert!(validate_dns_subdomain("pool-1.example").is_ok());
        assert!(validate_dns_subdomain("Pool").is_err());
        assert!(validate_dns_subdomain("a..b").is_err());
    }
}
