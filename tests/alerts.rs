//! The alerting rules (`config/prometheus/alerts.yaml`): valid for Prometheus, their unit tests
//! pass (`promtool test rules config/prometheus/alerts_test.yaml`: each alert fires on the
//! series it is meant for and stays quiet on the others, a standby controller included), the
//! PrometheusRule carries the same groups, and every FerroLB metric they read is one the
//! binaries register. promtool comes from Debian's `prometheus` package
//! (tests/install-deps.sh); without it this fails, it is not skipped.

use ferrolb_e2e::{ferrolb_metric_names, workspace_root};
use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let dir = workspace_root().join("config/prometheus");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("promtool (Debian package prometheus; tests/install-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_rules_are_valid_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(checked.contains("SUCCESS: 11 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn the_prometheus_rule_carries_the_same_groups() {
    let plain = yaml("config/prometheus/alerts.yaml");
    let operator = yaml("config/prometheus/prometheusrule.yaml");
    assert_eq!(operator["kind"], "PrometheusRule");
    assert_eq!(operator["metadata"]["namespace"], "ferrolb-system");
    assert_eq!(plain["groups"], operator["spec"]["groups"]);
}

#[test]
fn every_metric_the_alerts_read_is_registered_by_a_binary() {
    let root = workspace_root();
    let rules = std::fs::read_to_string(root.join("config/prometheus/alerts.yaml")).unwrap();
    let registered: String = ["controller/src/metrics.rs", "speaker/src/metrics.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .collect();
    let read = ferrolb_metric_names(&rules);
    assert!(read.len() >= 10, "{read:?}");
    for name in read {
        assert!(
            registered.contains(&format!("\"{name}\"")),
            "alerts.yaml reads {name}, which no binary registers"
        );
    }
}
