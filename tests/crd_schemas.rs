//! The generated CRD schemas refuse per-object mistakes the way the API server does on
//! `kubectl apply`, so an obviously bad object never gets in, with no admission webhook.
//!
//! What the API server checks on a create, reproduced here against the very CRDs
//! `ferrolb-controller crds` writes (`ferrolb_controller::crds::all`):
//! - the object's name is a DNS-1123 subdomain (every object, whatever its schema);
//! - no unknown fields (kubectl's default `--validate=strict`, field validation Strict);
//! - the OpenAPI constraints (minimum, maximum, maxLength, pattern, minItems): the
//!   `jsonschema` crate, draft 4 (OpenAPI 3.0's schema dialect is a draft-4 subset);
//! - the CEL rules (`x-kubernetes-validations`): `kube-cel`, which implements Kubernetes'
//!   CEL libraries (isIP, isCIDR, ip, the strings extension, durations) for this purpose.
//!
//! What needs other objects (overlapping pools, a peer's missing BFD profile, a reversed
//! range, which needs address ordering CEL lacks) is not the schema's job: the components
//! report it in their `ConfigurationState` (tests/standalone.rs checks that).

use ferrolb_shared::config::validate;
use ferrolb_shared::manifest::parse_documents;
use serde_json::{Value, json};

/// The `openAPIV3Schema` of the CRD of `kind`.
fn schema_of(kind: &str) -> Value {
    let (_, crd) = ferrolb_controller::crds::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    let version = &crd.spec.versions[0];
    let schema = version.schema.as_ref().unwrap().open_api_v3_schema.as_ref();
    serde_json::to_value(schema.unwrap()).unwrap()
}

/// Kubernetes' IsDNS1123Subdomain, which the API server applies to every object's name.
fn dns1123_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// Fields of `object` its schema does not declare (what strict field validation refuses).
fn unknown_fields(schema: &Value, object: &Value, path: &str, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match object {
        Value::Object(map) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                return; // a free-form object (metadata, a label map)
            };
            for (k, v) in map {
                // Every kind has these; the API server adds them to each CRD's schema.
                if path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
                    continue;
                }
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match props.get(k) {
                    Some(s) => unknown_fields(s, v, &here, out),
                    None => out.push(format!("{here}: unknown field")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(s, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Every reason the API server would refuse to create `object` (empty: it would be created).
fn refusals(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let schema = schema_of(kind);
    // Objects in MetalLB's group are checked against FerroLB's CRD of the same kind.
    let mut object = object.clone();
    object["apiVersion"] = json!("ferrolb.io/v1");
    let mut out = Vec::new();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if !dns1123_subdomain(name) {
        out.push(format!(
            "metadata.name: {name:?} is not a DNS-1123 subdomain"
        ));
    }
    unknown_fields(&schema, &object, "", &mut out);
    let openapi = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&schema)
        .expect("the CRD schema compiles as JSON Schema");
    for e in openapi.iter_errors(&object) {
        out.push(format!("{}: {e}", e.instance_path));
    }
    if let Err(errors) = kube_cel::Validator::new().validate(&schema, &object, None) {
        for e in errors.into_vec() {
            out.push(format!("{}: {} ({})", e.field_path, e.message, e.rule));
        }
    }
    out
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}
use serde::Deserialize;

fn has(refused: &[String], needle: &str) -> bool {
    refused.iter().any(|r| r.contains(needle))
}

#[test]
fn the_per_object_mistakes_of_bad_config_are_refused_by_the_schemas() {
    let text = std::fs::read_to_string("tests/data/bad-config.yaml").unwrap();
    let docs = documents(&text);
    let pool = refusals(&docs[0]);
    assert!(has(&pool, "metadata.name"), "{pool:#?}");
    assert!(has(&pool, "spec.autoAsign: unknown field"), "{pool:#?}");
    assert!(
        has(&pool, "every address must be a CIDR"),
        "10.0.0.0/33: {pool:#?}"
    );
    let peer = refusals(&docs[1]);
    assert!(has(&peer, "/spec/myASN"), "myASN 0: {peer:#?}");
    assert!(has(&peer, "peerAddress must be an IP address"), "{peer:#?}");
    assert!(has(&peer, "holdTime must be 0"), "1s: {peer:#?}");
    assert!(
        has(&peer, "exactly one of peerASN and dynamicASN"),
        "{peer:#?}"
    );
    // A missing BFD profile is another object's absence: never the schema's verdict.
    assert!(!has(&peer, "bfdProfile"), "{peer:#?}");
}

#[test]
fn what_the_schemas_cannot_see_is_left_to_validation() {
    // A reversed range is one object's mistake, but ordering addresses is beyond CEL.
    let text = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: r}\n\
                spec: {addresses: [10.1.0.9-10.1.0.1]}\n";
    let doc = &documents(text)[0];
    assert_eq!(refusals(doc), Vec::<String>::new());
    let file = parse_documents("r.yaml", text);
    let errors = validate(&file.config_objects()).unwrap_err();
    assert!(errors[0].message.contains("after its end"), "{errors:?}");
}

/// Each CEL rule and constraint, with one object it refuses; FerroLB's own validation must
/// refuse each too (the schema never refuses what the components would accept).
#[test]
fn each_rule_refuses_its_case_and_validation_agrees() {
    let object = |version: &str, kind: &str, spec: &str| {
        format!(
            "apiVersion: ferrolb.io/{version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{{spec}}}\n"
        )
    };
    let peer = |extra: &str| {
        object(
            "v1beta2",
            "BGPPeer",
            &format!("myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1{extra}"),
        )
    };
    let cases = [
        (
            peer(", dynamicASN: external"),
            "exactly one of peerASN and dynamicASN",
        ),
        (
            peer(", password: x, passwordSecret: {name: s}"),
            "mutually exclusive",
        ),
        (
            peer(", holdTime: 9s, keepaliveTime: 10s"),
            "keepaliveTime must not be longer",
        ),
        (
            peer(", keepaliveTime: 91s"),
            "keepaliveTime must not be longer",
        ),
        (peer(", holdTime: soon"), "/spec/holdTime"),
        (peer(", holdTime: 1s"), "holdTime must be 0"),
        (peer(", connectTime: 0s"), "connectTime must be"),
        (
            peer(", routerID: '2001:db8::1'"),
            "routerID must be an IPv4",
        ),
        (peer(", sourceAddress: '2001:db8::1'"), "same IP family"),
        (peer(", sourceAddress: here"), "sourceAddress must be an IP"),
        (peer(", peerPort: 0"), "/spec/peerPort"),
        (
            peer(&format!(", password: {}", "x".repeat(81))),
            "/spec/password",
        ),
        (
            object(
                "v1beta2",
                "BGPPeer",
                "myASN: 64500, dynamicASN: sideways, peerAddress: 192.0.2.1",
            ),
            "/spec/dynamicASN",
        ),
        (
            object(
                "v1beta1",
                "IPAddressPool",
                "addresses: [10.0.0.1-2001:db8::1]",
            ),
            "every address must be",
        ),
        (
            object("v1beta1", "IPAddressPool", "addresses: []"),
            "/spec/addresses",
        ),
        (
            object("v1beta1", "BGPAdvertisement", "aggregationLength: 33"),
            "/spec/aggregationLength",
        ),
        (
            object("v1beta1", "BFDProfile", "detectMultiplier: 1"),
            "/spec/detectMultiplier",
        ),
        (
            object("v1beta1", "BFDProfile", "receiveInterval: 5"),
            "/spec/receiveInterval",
        ),
    ];
    for (text, expected) in &cases {
        let refused = refusals(&documents(text)[0]);
        assert!(
            has(&refused, expected),
            "{text}: expected {expected:?}, got {refused:#?}"
        );
        let file = parse_documents("case.yaml", text);
        assert!(
            !file.errors.is_empty() || validate(&file.config_objects()).is_err(),
            "{text}: refused by the schema but accepted by FerroLB's validation"
        );
    }
}

/// No false refusals: every configuration object FerroLB ships as an example (including the
/// MetalLB manifests it reads unchanged) is created, and so is each rule's passing side.
#[test]
fn the_shipped_examples_and_valid_edge_cases_pass_the_schemas() {
    let mut checked = 0;
    for file in [
        "examples/pools.yaml",
        "examples/metallb/migrated.yaml",
        "examples/lab/pools.yaml",
        "examples/lab/gossip.yaml",
        "config/samples/pool.yaml",
    ] {
        for doc in documents(&std::fs::read_to_string(file).unwrap()) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            if !ferrolb_controller::crds::all()
                .iter()
                .any(|(_, c)| c.spec.names.kind == kind)
            {
                continue; // a Service, a Namespace, a Secret
            }
            assert_eq!(refusals(&doc), Vec::<String>::new(), "{file}: {doc}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} objects checked");
    let edge = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: edge.cases}\n\
                spec: {addresses: ['10.0.0.7/24', 192.0.2.1, '10.0.1.10 - 10.0.1.20', \
                '2001:db8:1::1-2001:db8:1::5', '2001:db8::/120']}\n---\n\
                apiVersion: ferrolb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: unnumbered}\n\
                spec: {myASN: 64500, dynamicASN: external, peerAddress: '', interface: eth1, \
                holdTime: 0s, keepaliveTime: 0s, routerID: 10.0.0.1}\n---\n\
                apiVersion: ferrolb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: timers}\n\
                spec: {myASN: 4200000000, peerASN: 4294967295, peerAddress: '2001:db8::1', \
                sourceAddress: '2001:db8::2', holdTime: 1m30s, keepaliveTime: 30s, connectTime: 5s}\n";
    for (doc, text) in documents(edge).iter().zip(edge.split("---")) {
        assert_eq!(refusals(doc), Vec::<String>::new(), "{doc}");
        let file = parse_documents("edge.yaml", text);
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        validate(&file.config_objects()).unwrap_or_else(|e| panic!("{e:?}"));
    }
}
