//! `ConfigurationState`: whether a component accepted the newest configuration, with every
//! error, for `kubectl get configurationstates` (MetalLB's kind of the same name, with the
//! errors listed one by one). FerroLB has no admission webhook: per-object mistakes are refused
//! by the CRD schemas (`schema_rules`), and everything else is found by the components, which
//! say so here. One object per component: `controller`, and `speaker.<node>` for each speaker
//! (a speaker validates its own view, which can differ while the controller is down or a
//! watch lags). Written by FerroLB; never configuration (a copy in a manifest is skipped).

// kube-derive takes one `printcolumn(...)` per column, which clippy mistakes for repeats.
#![allow(clippy::duplicated_attributes)]

use super::ConfigError;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The name of the controller's object.
pub const CONTROLLER_STATE_NAME: &str = "controller";

/// How many errors an object lists; the rest are counted in the summary (an object has a size
/// limit, a configuration can have thousands of mistakes).
pub const MAX_LISTED_ERRORS: usize = 100;

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "ConfigurationState",
    namespaced,
    status = "ConfigurationStateStatus",
    shortname = "configstate",
    category = "ferrolb",
    crates(kube_core = "::kube_core"),
    derive = "PartialEq",
    printcolumn(name = "Component", type_ = "string", json_path = ".status.component"),
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "Summary",
        type_ = "string",
        json_path = ".status.summary",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ConfigurationStateSpec {}

/// One component's verdict on the newest configuration it read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// `controller` or `speaker`.
    #[serde(default)]
    pub component: String,
    /// The speaker's node; empty for the controller.
    #[serde(default)]
    pub node: String,
    /// `Valid`: the newest configuration is in force. `Invalid`: it was rejected and the last
    /// good one (if any) stays in force.
    #[serde(default)]
    pub result: String,
    /// One line: what is in force, or how many errors and the first.
    #[serde(default)]
    pub summary: String,
    /// Every error (up to [`MAX_LISTED_ERRORS`]), naming the file or object and the field.
    /// Always written, empty too: a patch then replaces an earlier list rather than keeping it.
    #[serde(default)]
    pub errors: Vec<String>,
}

pub const VALID: &str = "Valid";
pub const INVALID: &str = "Invalid";

impl ConfigurationStateStatus {
    /// The newest configuration is in force; `summary` says what it holds.
    pub fn valid(component: &str, node: &str, summary: impl Into<String>) -> Self {
        ConfigurationStateStatus {
            component: component.into(),
            node: node.into(),
            result: VALID.into(),
            summary: summary.into(),
            errors: Vec::new(),
        }
    }

    /// The newest configuration was rejected with `errors`.
    pub fn invalid(component: &str, node: &str, errors: &[ConfigError]) -> Self {
        let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
        let summary = match errors.len() {
            0 | 1 => format!("rejected: {first}; the last good configuration stays in force"),
            n => format!(
                "rejected with {n} errors, first: {first}; the last good configuration stays in force"
            ),
        };
        ConfigurationStateStatus {
            component: component.into(),
            node: node.into(),
            result: INVALID.into(),
            summary,
            errors: errors
                .iter()
                .take(MAX_LISTED_ERRORS)
                .map(|e| e.to_string())
                .collect(),
        }
    }

    pub fn is_valid(&self) -> bool {
        self.result == VALID
    }
}

/// The object `name` in `namespace` with `status`.
pub fn configuration_state(
    name: &str,
    namespace: &str,
    status: ConfigurationStateStatus,
) -> ConfigurationState {
    let mut object = ConfigurationState::new(name, ConfigurationStateSpec {});
    object.metadata.namespace = Some(namespace.into());
    object.status = Some(status);
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn error(i: usize) -> ConfigError {
        ConfigError {
            source: Source::file(format!("f{i}.yaml"), 1),
            kind: "IPAddressPool".into(),
            name: "a".into(),
            field: "spec.addresses[0]".into(),
            message: format!("mistake {i}"),
        }
    }

    #[test]
    fn an_invalid_state_lists_the_errors_up_to_the_limit_and_counts_them_all() {
        let errors: Vec<_> = (0..MAX_LISTED_ERRORS + 5).map(error).collect();
        let s = ConfigurationStateStatus::invalid("speaker", "node1", &errors);
        assert_eq!(s.result, INVALID);
        assert!(!s.is_valid());
        assert_eq!(s.errors.len(), MAX_LISTED_ERRORS);
        assert!(s.summary.contains("105 errors"), "{}", s.summary);
        assert!(s.summary.contains("mistake 0"), "{}", s.summary);
        assert_eq!(s.node, "node1");
    }

    #[test]
    fn the_object_round_trips_with_camel_case_fields() {
        let o = configuration_state(
            CONTROLLER_STATE_NAME,
            "ferrolb-system",
            ConfigurationStateStatus::valid("controller", "", "1 pool"),
        );
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["kind"], "ConfigurationState");
        assert_eq!(v["status"]["result"], "Valid");
        assert_eq!(v["status"]["errors"], serde_json::json!([]));
        let back: ConfigurationState = serde_json::from_value(v).unwrap();
        assert_eq!(back, o);
    }
}
