use super::*;

fn parse(text: &str) -> ParsedFile {
    parse_documents("test.yaml", text)
}

#[test]
fn reads_ferrolb_and_metallb_kinds_and_cluster_objects() {
    let text = r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: a, namespace: ferrolb-system}
spec:
  addresses: [10.0.0.0/24]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: b}
spec:
  addresses: ["10.0.1.1-10.0.1.9"]
  autoAssign: false
  avoidBuggyIPs: true
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, holdTime: 9s}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  ports: [{port: 80, protocol: TCP}]
---
"#;
    let f = parse(text);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(f.objects.len(), 4);
    let Manifest::Config(c) = &f.objects[1].manifest else {
        panic!("not config")
    };
    let ConfigObject::IPAddressPool(p) = c.as_ref() else {
        panic!("not a pool")
    };
    assert!(!p.spec.auto_assign());
    assert!(p.spec.avoid_buggy_ips());
    assert_eq!(f.objects[1].source.document, 2);
    assert!(matches!(
        f.objects[3].manifest,
        Manifest::Cluster(ClusterObject::Service(_))
    ));
}

#[test]
fn every_unknown_field_is_reported_with_its_path() {
    let text = r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: a}
spec:
  addresses: [10.0.0.0/24]
  autoAsign: true
  serviceAllocation:
    priorty: 3
extra: 1
"#;
    let f = parse(text);
    let fields: Vec<&str> = f.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["extra", "spec.autoAsign", "spec.serviceAllocation.priorty"]
    );
    assert!(
        f.errors
            .iter()
            .all(|e| e.kind == "IPAddressPool" && e.name == "a")
    );
    assert!(
        f.errors[0]
            .to_string()
            .starts_with("test.yaml (document 1): IPAddressPool \"a\": extra: unknown field")
    );
}

#[test]
fn type_errors_name_the_field_and_value() {
    let text = "apiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: x}\nspec: {detectMultiplier: many}\n";
    let f = parse(text);
    assert_eq!(f.errors.len(), 1);
    assert_eq!(f.errors[0].field, "spec.detectMultiplier");
    assert!(
        f.errors[0].message.contains("many"),
        "{}",
        f.errors[0].message
    );
}

#[test]
fn bad_documents_do_not_hide_good_ones() {
    let text = "apiVersion: ferrolb.io/v1beta1\nkind: Frobnicator\nmetadata: {name: x}\n---\nkind: Service\n---\n- a list\n---\napiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata: {name: c}\n";
    let f = parse(text);
    assert_eq!(f.objects.len(), 1);
    let fields: Vec<(usize, &str)> = f
        .errors
        .iter()
        .map(|e| (e.source.document, e.field.as_str()))
        .collect();
    assert_eq!(fields, [(1, "kind"), (2, "apiVersion"), (3, "")]);
}

#[test]
fn wrong_version_is_refused() {
    let f = parse(
        "apiVersion: ferrolb.io/v1beta2\nkind: IPAddressPool\nmetadata: {name: x}\nspec: {addresses: []}\n",
    );
    assert_eq!(f.errors.len(), 1);
    assert_eq!(f.errors[0].field, "apiVersion");
}

#[test]
fn syntax_errors_are_reported_not_panicked() {
    for text in [
        "a: [",
        "\t- x",
        "apiVersion: v1\nkind: Service\nmetadata: {name: 3}\nspec: {ports: 7}",
        "{{{{",
        "\u{0}\u{1}",
    ] {
        let f = parse(text);
        assert!(!f.errors.is_empty(), "{text:?} should fail");
    }
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const SEED: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a, labels: {x: y}}\nspec:\n  addresses: [10.0.0.0/24, '10.1.0.1-10.1.0.9']\n  serviceAllocation: {priority: 1, namespaceSelectors: [{matchExpressions: [{key: k, operator: In, values: [v]}]}]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 90s}\n";

    fn run(text: &str) {
        let f = parse_documents("p.yaml", text);
        let objects: Vec<_> = f.config_objects();
        let _ = crate::config::validate(&objects);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text(text in "[ -~\n\t]{0,400}") {
            run(&text);
        }

        #[test]
        fn mutated_manifests(edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..8)) {
            let mut bytes = SEED.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            run(&String::from_utf8_lossy(&bytes));
        }
    }
}
