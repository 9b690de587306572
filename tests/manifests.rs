//! Every manifest the project ships parses into the Kubernetes API types (or FerroLB's CRD
//! types), and the committed CRDs match what the Rust types generate.

use ferrolb_e2e::workspace_root;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut errors = Vec::new();
    let files = ferrolb_controller::check::manifest_files(dir, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    files
}

/// Deserialize strictly: an unknown field anywhere is a typo.
fn strict<T: DeserializeOwned>(file: &Path, doc: usize, value: serde_yaml::Value) {
    let mut unknown = Vec::new();
    let mut record = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
    let result: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record));
    if let Err(e) = result {
        panic!("{} document {doc}: {e}", file.display());
    }
    assert!(
        unknown.is_empty(),
        "{} document {doc}: unknown fields {unknown:?}",
        file.display()
    );
}

fn check_document(file: &Path, doc: usize, value: serde_yaml::Value) -> &'static str {
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("")
        .to_string();
    let api = value
        .get("apiVersion")
        .and_then(|k| k.as_str())
        .unwrap_or("")
        .to_string();
    match (api.as_str(), kind.as_str()) {
        ("v1", "Namespace") => strict::<Namespace>(file, doc, value),
        ("v1", "Service") => strict::<Service>(file, doc, value),
        ("v1", "ServiceAccount") => strict::<ServiceAccount>(file, doc, value),
        ("apps/v1", "Deployment") => strict::<Deployment>(file, doc, value),
        ("apps/v1", "DaemonSet") => strict::<DaemonSet>(file, doc, value),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => strict::<ClusterRole>(file, doc, value),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            strict::<ClusterRoleBinding>(file, doc, value)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => strict::<Role>(file, doc, value),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => strict::<RoleBinding>(file, doc, value),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            strict::<CustomResourceDefinition>(file, doc, value)
        }
        _ => {
            // FerroLB / MetalLB config kinds: the project's own strict reader.
            let text = serde_yaml::to_string(&value).unwrap();
            let parsed =
                ferrolb_shared::manifest::parse_documents(&file.display().to_string(), &text);
            assert!(
                parsed.errors.is_empty(),
                "{} document {doc}: {:?}",
                file.display(),
                parsed.errors
            );
            assert_eq!(
                parsed.objects.len(),
                1,
                "{} document {doc}: {kind} not understood",
                file.display()
            );
            return "ferrolb";
        }
    }
    "kubernetes"
}

#[test]
fn every_shipped_manifest_parses_into_api_types() {
    let root = workspace_root();
    let mut counted = 0;
    for dir in ["config", "examples"] {
        // Prometheus's and Grafana's files are not Kubernetes API types: tests/alerts.rs and
        // tests/dashboard.rs check them.
        let monitoring = [root.join("config/prometheus"), root.join("config/grafana")];
        for file in yaml_files(&root.join(dir))
            .into_iter()
            .filter(|f| !monitoring.iter().any(|m| f.starts_with(m)))
        {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
                let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
                if value.is_null() {
                    continue;
                }
                check_document(&file, i + 1, value);
                counted += 1;
            }
        }
    }
    assert!(
        counted >= 30,
        "only {counted} manifests found: is the walk broken?"
    );
}

#[test]
fn a_typo_in_a_manifest_is_caught() {
    let value: serde_yaml::Value = serde_yaml::from_str("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2, selector: {}, template: {}}\n").unwrap();
    let caught = std::panic::catch_unwind(|| check_document(Path::new("typo.yaml"), 1, value));
    assert!(caught.is_err(), "the misspelt `replica` must fail");
}

#[test]
fn committed_crds_match_the_types() {
    let dir = workspace_root().join("config/crds");
    for (file, crd) in ferrolb_controller::crds::all() {
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert_eq!(
            committed,
            ferrolb_controller::crds::to_yaml(&crd),
            "config/crds/{file} is out of date: run `cargo run -p ferrolb-controller -- crds --out config/crds`"
        );
    }
    assert_eq!(
        yaml_files(&dir).len(),
        ferrolb_controller::crds::all().len(),
        "stray files in config/crds"
    );
}

#[test]
fn committed_install_manifest_matches_config() {
    let committed =
        std::fs::read_to_string(workspace_root().join("config/install.yaml")).unwrap_or_default();
    assert!(
        committed == ferrolb_controller::install::manifest(),
        "config/install.yaml is out of date: run `cargo run -p ferrolb-controller -- install --out config/install.yaml`"
    );
    // Everything, in the order Kubernetes needs it: the namespace first, the CRDs before
    // anything else of FerroLB's, the workloads last.
    let kinds: Vec<String> = serde_yaml::Deserializer::from_str(&committed)
        .filter_map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).ok()?;
            Some(v.get("kind")?.as_str()?.to_string())
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("Namespace"));
    let last_crd = kinds.iter().rposition(|k| k == "CustomResourceDefinition");
    let first_other = kinds
        .iter()
        .position(|k| k != "Namespace" && k != "CustomResourceDefinition");
    assert!(last_crd < first_other, "{kinds:?}");
    assert_eq!(
        kinds.iter().rev().take(2).collect::<Vec<_>>(),
        ["DaemonSet", "Deployment"],
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "CustomResourceDefinition")
            .count(),
        ferrolb_controller::crds::all().len()
    );
}

/// The workloads run the image `image/build.sh` tags by default: the same name and this
/// version.
#[test]
fn the_workloads_run_the_image_the_build_makes() {
    let want = format!(
        "image: ghcr.io/ferrolb/ferrolb:{}",
        env!("CARGO_PKG_VERSION")
    );
    for file in [
        "config/deploy/controller.yaml",
        "config/deploy/speaker.yaml",
    ] {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        assert!(text.contains(&want), "{file} does not run {want}");
    }
    let build = std::fs::read_to_string(workspace_root().join("image/build.sh")).unwrap();
    assert!(
        build.contains("tag=${tag:-ghcr.io/ferrolb/ferrolb:$version}"),
        "image/build.sh tags another name"
    );
}
