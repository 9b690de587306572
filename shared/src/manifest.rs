//! Reading YAML manifests: multi-document files holding FerroLB (or MetalLB) config kinds and
//! the Kubernetes kinds the standalone mode understands (Service, Namespace, Node,
//! EndpointSlice, Secret).
//!
//! Every document is read independently, so one broken document never hides problems in the
//! others. Unknown fields in config kinds are collected (all of them, with their paths) rather
//! than stopping at the first, and type errors name the exact field.

use crate::config::error::{ConfigError, ObjectRef, Source};
use crate::config::types::*;
use crate::config::{ConfigObject, METALLB_GROUP};
use crate::service::Service;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::sync::Arc;

/// A Kubernetes object the cluster sources understand (see [`crate::cluster`]).
///
/// Shared (`Arc`): a source keeps what it last saw to diff the next listing against, and
/// every consumer keeps its own view of the cluster; a clone of an object is a pointer, so
/// at 10,000 Services the objects are held once, not once per holder (change one with
/// `Arc::make_mut`).
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterObject {
    Service(Arc<Service>),
    Namespace(Arc<Namespace>),
    Node(Arc<Node>),
    /// Projected where it enters ([`crate::endpoints`]): never the whole object.
    EndpointSlice(Arc<crate::endpoints::Slice>),
    Secret(Arc<Secret>),
}

/// One document of a manifest file.
#[derive(Clone, Debug)]
pub enum Manifest {
    Config(Box<ConfigObject>),
    Cluster(ClusterObject),
}

/// A parsed document with where it came from.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub source: Source,
    pub manifest: Manifest,
}

/// Everything read from one file: the good documents and the problems with the others.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub objects: Vec<Parsed>,
    pub errors: Vec<ConfigError>,
}

impl ParsedFile {
    /// The config objects only, with their sources, in document order.
    pub fn config_objects(&self) -> Vec<(Source, ConfigObject)> {
        self.objects
            .iter()
            .filter_map(|p| match &p.manifest {
                Manifest::Config(c) => Some((p.source.clone(), (**c).clone())),
                Manifest::Cluster(_) => None,
            })
            .collect()
    }
}

/// Parse every YAML document in `text`. Never panics, whatever the bytes.
pub fn parse_documents(file: &str, text: &str) -> ParsedFile {
    let mut out = ParsedFile::default();
    let file: Arc<str> = Arc::from(file);
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let source = Source::file(file.clone(), i + 1);
        let unknown = ObjectRef {
            source: &source,
            kind: "?",
            name: "",
        };
        let value = match <Value as serde::Deserialize>::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                out.errors
                    .push(unknown.error("", format!("not valid YAML: {e}")));
                // The YAML stream cannot be trusted past a syntax error.
                break;
            }
        };
        let (manifest, mut errors) = parse_value(&source, value);
        out.errors.append(&mut errors);
        if let Some(manifest) = manifest {
            out.objects.push(Parsed { source, manifest });
        }
    }
    out
}

/// Parse one document. An object whose only problems are unknown fields is still returned
/// (with those errors), so that validation can report its other problems in the same round;
/// the errors alone are enough to reject a configuration. An empty document (a stray `---`)
/// and a status kind ([`STATUS_KINDS`], e.g. a saved `ServiceL2Status`) give neither object
/// nor error.
pub fn parse_value(source: &Source, value: Value) -> (Option<Manifest>, Vec<ConfigError>) {
    match parse_inner(source, value) {
        Ok(m) => (m, Vec::new()),
        Err((m, errors)) => (m, errors),
    }
}

type Partial = (Option<Manifest>, Vec<ConfigError>);

fn parse_inner(source: &Source, value: Value) -> Result<Option<Manifest>, Partial> {
    let Value::Mapping(map) = &value else {
        if value.is_null() {
            return Ok(None);
        }
        let r = ObjectRef {
            source,
            kind: "?",
            name: "",
        };
        return Err((
            None,
            vec![r.error(
                "",
                "a manifest must be a mapping with apiVersion, kind and metadata",
            )],
        ));
    };
    let text_field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let api_version = text_field("apiVersion");
    let kind = text_field("kind");
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let r = ObjectRef {
        source,
        kind: if kind.is_empty() { "?" } else { &kind },
        name: &name,
    };
    if kind.is_empty() {
        return Err((None, vec![r.error("kind", "missing kind")]));
    }
    if api_version.is_empty() {
        return Err((None, vec![r.error("apiVersion", "missing apiVersion")]));
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    match (group, kind.as_str()) {
        ("", "Service") => cluster(&r, value, ClusterObject::service),
        ("", "Namespace") => cluster(&r, value, ClusterObject::namespace),
        ("", "Node") => cluster(&r, value, ClusterObject::node),
        ("", "Secret") => cluster(&r, value, ClusterObject::secret),
        ("discovery.k8s.io", "EndpointSlice") => cluster(&r, value, ClusterObject::endpoint_slice),
        // Status FerroLB (or MetalLB) writes, e.g. saved with `kubectl get -o yaml`: it is not
        // configuration and says nothing the cluster sources need, so it is skipped.
        (GROUP | METALLB_GROUP, k) if STATUS_KINDS.contains(&k) => Ok(None),
        (GROUP | METALLB_GROUP, _) => {
            let want = if kind == "BGPPeer" { &["v1beta1", "v1beta2"][..] } else { &["v1beta1"][..] };
            if !want.contains(&version) {
                return Err((None, vec![r.error(
                    "apiVersion",
                    format!("{kind} is not served at {api_version:?}; use {group}/{}", want.join(format!(" or {group}/").as_str())),
                )]));
            }
            let (object, errors) = config(&r, map);
            let manifest = object.map(|c| Manifest::Config(Box::new(c)));
            if errors.is_empty() { Ok(manifest) } else { Err((manifest, errors)) }
        }
        _ => Err((None, vec![r.error(
            "kind",
            format!(
                "unsupported kind {kind:?} in {api_version:?}: FerroLB reads IPAddressPool, L2Advertisement, BGPAdvertisement, \
                 BGPPeer, BFDProfile, Community ({GROUP} or {METALLB_GROUP}), Service, Namespace, Node, Secret (v1) \
                 and EndpointSlice (discovery.k8s.io/v1)"
            ),
        )])),
    }
}

fn cluster<T: DeserializeOwned>(
    r: &ObjectRef<'_>,
    value: Value,
    wrap: impl FnOnce(T) -> ClusterObject,
) -> Result<Option<Manifest>, Partial> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(obj) => Ok(Some(Manifest::Cluster(wrap(obj)))),
        Err(e) => Err((
            None,
            vec![r.error(e.path().to_string(), e.inner().to_string())],
        )),
    }
}

/// A config object and every problem found reading it.
fn config(
    r: &ObjectRef<'_>,
    map: &serde_yaml::Mapping,
) -> (Option<ConfigObject>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    for key in map.keys() {
        let k = key.as_str().unwrap_or("");
        if !matches!(k, "apiVersion" | "kind" | "metadata" | "spec" | "status") {
            errors.push(r.error(display_key(key), "unknown field"));
        }
    }
    let metadata: ObjectMeta = match map.get("metadata") {
        None => {
            errors.push(r.error(
                "metadata",
                "missing metadata (an object needs metadata.name)",
            ));
            ObjectMeta::default()
        }
        Some(m) => typed(r, "metadata", m.clone(), &mut errors).unwrap_or_default(),
    };
    let spec = map
        .get("spec")
        .cloned()
        .unwrap_or(Value::Mapping(Default::default()));
    let object = match r.kind {
        "IPAddressPool" => typed(r, "spec", spec, &mut errors).map(|spec| {
            ConfigObject::IPAddressPool(IPAddressPool {
                metadata,
                spec,
                status: None,
            })
        }),
        "L2Advertisement" => typed(r, "spec", spec, &mut errors)
            .map(|spec| ConfigObject::L2Advertisement(L2Advertisement { metadata, spec })),
        "BGPAdvertisement" => typed(r, "spec", spec, &mut errors)
            .map(|spec| ConfigObject::BGPAdvertisement(BGPAdvertisement { metadata, spec })),
        "BGPPeer" => typed(r, "spec", spec, &mut errors)
            .map(|spec| ConfigObject::BGPPeer(BGPPeer { metadata, spec })),
        "BFDProfile" => typed(r, "spec", spec, &mut errors)
            .map(|spec| ConfigObject::BFDProfile(BFDProfile { metadata, spec })),
        "Community" => typed(r, "spec", spec, &mut errors)
            .map(|spec| ConfigObject::Community(Community { metadata, spec })),
        other => {
            errors.push(r.error(
                "kind",
                format!("unknown kind {other:?}; config kinds are IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community"),
            ));
            None
        }
    };
    (object, errors)
}

/// Deserialize `value` as `T`, reporting every unknown field and the first type error, each
/// with its full path below `prefix`.
fn typed<T: DeserializeOwned>(
    r: &ObjectRef<'_>,
    prefix: &str,
    value: Value,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let de = serde_ignored::Deserializer::new(value, &mut record);
    let result = serde_path_to_error::deserialize::<_, T>(de);
    for path in unknown {
        // serde_ignored marks the step through an `Option` as `?`; it is noise to a reader.
        let path = path.replace(".?", "").replace("?.", "");
        errors.push(r.error(format!("{prefix}.{path}"), "unknown field"));
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." {
                prefix.to_string()
            } else {
                format!("{prefix}.{path}")
            };
            errors.push(r.error(field, e.inner().to_string()));
            None
        }
    }
}

fn display_key(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests;
