//! The one install manifest, `config/install.yaml`: everything `kubectl apply -f` needs, in the
//! order it must be created (the namespace, the CRDs, RBAC, then the controller and the
//! speakers, which run the image `image/build.sh` builds), generated from `config/` by
//! `ferrolb-controller install --out config/install.yaml` and checked against it by a drift
//! test. Uninstalling is `kubectl delete -f` of the same file: the speakers get SIGTERM and
//! remove what they programmed on their nodes.

use crate::crds;

/// The parts of `config/`, in creation order, each with where it comes from.
const PARTS: [(&str, &str); 5] = [
    (
        "config/namespace.yaml",
        include_str!("../../config/namespace.yaml"),
    ),
    (
        "config/rbac/controller.yaml",
        include_str!("../../config/rbac/controller.yaml"),
    ),
    (
        "config/rbac/speaker.yaml",
        include_str!("../../config/rbac/speaker.yaml"),
    ),
    (
        "config/deploy/controller.yaml",
        include_str!("../../config/deploy/controller.yaml"),
    ),
    (
        "config/deploy/speaker.yaml",
        include_str!("../../config/deploy/speaker.yaml"),
    ),
];

/// The whole manifest.
pub fn manifest() -> String {
    let mut out = String::from(
        "# FerroLB, all of it: kubectl apply -f config/install.yaml (and kubectl delete -f to remove).\n\
         # Generated from config/ by `cargo run -p ferrolb-controller -- install --out config/install.yaml`;\n\
         # do not edit by hand (tests/manifests.rs checks it is current).\n",
    );
    let mut push = |source: &str, text: &str| {
        out.push_str(&format!("---\n# From {source}\n"));
        out.push_str(text.trim_start_matches("---\n"));
        if !text.ends_with('\n') {
            out.push('\n');
        }
    };
    let (namespace, rest) = PARTS.split_first().expect("parts");
    push(namespace.0, namespace.1);
    for (file, crd) in crds::all() {
        push(&format!("config/crds/{file}"), &crds::to_yaml(&crd));
    }
    for (source, text) in rest {
        push(source, text);
    }
    out
}
