//! The pure half of the directory source: what one scan of a manifest directory found, and
//! the [`ClusterEvent`]s that take a consumer from the previous scan to this one.

use super::{ClusterEvent, ClusterObject, Kind, ObjectKey, Subscription};
use crate::config::{ConfigError, ConfigObject, Source};
use crate::manifest::{Manifest, Parsed, ParsedFile};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kinds whose documents are cluster objects, not configuration: a broken one of these does
/// not reject the configuration (it is only logged).
pub const CLUSTER_KINDS: [&str; 5] = ["Service", "Namespace", "Node", "EndpointSlice", "Secret"];

/// One file's documents as a scanner keeps them between scans: the cluster objects shared
/// (`Arc`), so that each scan's [`Contents`] points at them instead of copying every object
/// (that copy was a quarter of a standalone speaker's heap with 10,000 Services; a Service
/// given its recorded status still gets its own).
#[derive(Debug, Default)]
pub struct SharedFile {
    /// The config documents (in order) and the problems.
    pub parsed: ParsedFile,
    /// The cluster objects, in document order.
    pub objects: Vec<Arc<ClusterObject>>,
}

impl SharedFile {
    /// Keep what `subscription` wants: the config documents, the problems, and the cluster
    /// objects of subscribed kinds only (the controller does not keep the EndpointSlices it
    /// never reads: 15 MiB at 10,000 Services with 10 endpoints each).
    pub fn keeping(parsed: ParsedFile, subscription: &Subscription) -> Self {
        let (mut config, mut objects) = (Vec::new(), Vec::new());
        for p in parsed.objects {
            match p.manifest {
                Manifest::Cluster(obj) if subscription.wants(obj.kind()) => {
                    objects.push(Arc::new(obj))
                }
                Manifest::Cluster(_) => {}
                manifest => config.push(Parsed { manifest, ..p }),
            }
        }
        SharedFile {
            parsed: ParsedFile {
                objects: config,
                errors: parsed.errors,
            },
            objects,
        }
    }
}

/// What a directory held at one scan, restricted to what the consumer subscribed to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contents {
    /// Config objects in file and document order, and the problems of unreadable config
    /// documents (and unlistable directories).
    pub config: (Vec<(Source, ConfigObject)>, Vec<ConfigError>),
    /// Shared with the [`SharedFile`]s they came from until changed (a Service given its
    /// recorded status, say: `Arc::make_mut`).
    pub objects: BTreeMap<(Kind, ObjectKey), Arc<ClusterObject>>,
}

impl Contents {
    /// Contents with these listing problems (they reject the configuration).
    pub fn with_errors(errors: Vec<ConfigError>) -> Self {
        Contents {
            config: (Vec::new(), errors),
            objects: BTreeMap::new(),
        }
    }

    /// Add one file's documents (its cluster objects are the subscribed kinds already, see
    /// [`SharedFile::keeping`]). Returns the problems with cluster-kind documents, which only
    /// deserve a warning. A later object with the same key replaces an earlier one.
    pub fn add_file(&mut self, file: &SharedFile) -> Vec<ConfigError> {
        let parsed = &file.parsed;
        let mut ignored = Vec::new();
        for e in &parsed.errors {
            if CLUSTER_KINDS.contains(&e.kind.as_str()) {
                ignored.push(e.clone());
            } else {
                self.config.1.push(e.clone());
            }
        }
        for p in &parsed.objects {
            if let Manifest::Config(c) = &p.manifest {
                self.config.0.push((p.source.clone(), (**c).clone()));
            }
        }
        for obj in &file.objects {
            self.objects.insert((obj.kind(), obj.key()), obj.clone());
        }
        ignored
    }

    /// The objects of one kind, by key.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = (&ObjectKey, &ClusterObject)> {
        self.shared_of_kind(kind).map(|(key, o)| (key, &**o))
    }

    /// The objects of one kind, by key, as shared.
    fn shared_of_kind(
        &self,
        kind: Kind,
    ) -> impl Iterator<Item = (&ObjectKey, &Arc<ClusterObject>)> {
        self.objects
            .range((kind, ObjectKey::default())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|((_, key), o)| (key, o))
    }

    /// The objects of one kind, by key, to change in place (`Arc::make_mut`).
    pub fn of_kind_mut(
        &mut self,
        kind: Kind,
    ) -> impl Iterator<Item = (&ObjectKey, &mut Arc<ClusterObject>)> {
        self.objects
            .range_mut((kind, ObjectKey::default())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|((_, key), o)| (key, o))
    }
}

/// The events that take a consumer from `last` to `next`, in [`Kind`] order (Namespaces
/// before the config, the config before Services), deletions of a kind before its upserts.
pub fn diff(last: &Contents, next: &Contents) -> Vec<ClusterEvent> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        if kind == Kind::EndpointSlice {
            push_config(last, next, &mut out);
        }
        for (key, _) in last.of_kind(kind) {
            if !next.objects.contains_key(&(kind, key.clone())) {
                out.push(ClusterEvent::Delete(kind, key.clone()));
            }
        }
        for (key, obj) in next.shared_of_kind(kind) {
            // Unchanged objects are mostly the very same one (shared with the file cache).
            let same = last
                .objects
                .get(&(kind, key.clone()))
                .is_some_and(|old| Arc::ptr_eq(old, obj) || old == obj);
            if !same {
                out.push(ClusterEvent::Upsert((**obj).clone()));
            }
        }
    }
    out
}

fn push_config(last: &Contents, next: &Contents, out: &mut Vec<ClusterEvent>) {
    if next.config != last.config {
        out.push(ClusterEvent::Config {
            objects: next.config.0.clone(),
            errors: next.config.1.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_documents;

    const FILE: &str = "\
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: main}
spec: {addresses: [10.0.0.0/29]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Service
metadata: {name: broken}
spec: {ports: 7}
";

    fn scan(text: &str, sub: &Subscription) -> (Contents, Vec<ConfigError>) {
        let mut c = Contents::default();
        let ignored = c.add_file(&SharedFile::keeping(parse_documents("f.yaml", text), sub));
        (c, ignored)
    }

    fn names(events: &[ClusterEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                ClusterEvent::Upsert(o) => format!("upsert {} {}", o.kind(), o.key()),
                ClusterEvent::Delete(kind, k) => format!("delete {kind} {k}"),
                ClusterEvent::Config { objects, errors } => {
                    format!("config {}+{}", objects.len(), errors.len())
                }
                ClusterEvent::Synced => "synced".into(),
            })
            .collect()
    }

    #[test]
    fn only_subscribed_kinds_and_broken_cluster_documents_are_only_warned_about() {
        let (c, ignored) = scan(FILE, &Subscription::new([Kind::Service]));
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert_eq!(ignored[0].name, "broken");
        assert!(c.config.1.is_empty());
        let events = diff(&Contents::default(), &c);
        assert_eq!(names(&events), ["config 1+0", "upsert Service default/web"]);
    }

    #[test]
    fn changes_deletions_and_config_order() {
        let sub = Subscription::new([Kind::Service, Kind::Node]);
        let (a, _) = scan(FILE, &sub);
        assert_eq!(
            names(&diff(&Contents::default(), &a)),
            ["upsert Node n1", "config 1+0", "upsert Service default/web"]
        );
        assert!(diff(&a, &a).is_empty(), "an unchanged scan says nothing");
        let edited = FILE
            .replace("port: 80", "port: 81")
            .replace("name: n1", "name: n2")
            .replace("10.0.0.0/29", "10.0.1.0/29");
        let (b, _) = scan(&edited, &sub);
        assert_eq!(
            names(&diff(&a, &b)),
            [
                "delete Node n1",
                "upsert Node n2",
                "config 1+0",
                "upsert Service default/web"
            ]
        );
        assert_eq!(
            names(&diff(&b, &Contents::default())),
            ["delete Node n2", "config 0+0", "delete Service default/web"]
        );
    }

    #[test]
    fn a_file_keeps_only_the_subscribed_kinds() {
        let services = Subscription::new([Kind::Service]);
        let file = SharedFile::keeping(parse_documents("f.yaml", FILE), &services);
        let kinds: Vec<Kind> = file.objects.iter().map(|o| o.kind()).collect();
        assert_eq!(kinds, [Kind::Service], "n1 is not kept");
        assert_eq!(file.parsed.objects.len(), 1, "the pool is kept");
        assert!(
            !file.parsed.errors.is_empty(),
            "so is the broken document's error"
        );
    }

    #[test]
    fn contents_share_the_files_objects() {
        let sub = Subscription::new([Kind::Service, Kind::Node]);
        let file = SharedFile::keeping(parse_documents("f.yaml", FILE), &sub);
        assert_eq!(file.objects.len(), 2, "web and n1 (broken is an error)");
        assert_eq!(file.parsed.objects.len(), 1, "the pool");
        let (mut a, mut b) = (Contents::default(), Contents::default());
        a.add_file(&file);
        b.add_file(&file);
        for (key, obj) in &a.objects {
            assert!(Arc::ptr_eq(obj, &b.objects[key]), "{key:?} was copied");
        }
        assert!(diff(&a, &b).is_empty());
        // A changed copy is a change.
        for (_, obj) in b.of_kind_mut(Kind::Service) {
            if let ClusterObject::Service(svc) = Arc::make_mut(obj) {
                Arc::make_mut(svc).uid = Some("u1".into());
            }
        }
        assert_eq!(names(&diff(&a, &b)), ["upsert Service default/web"]);
    }

    #[test]
    fn unreadable_config_documents_are_config_errors() {
        let text = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: x}\nspec: {adresses: []}\n";
        let (c, ignored) = scan(text, &Subscription::default());
        assert!(ignored.is_empty());
        assert!(
            c.config.1.iter().any(|e| e.field == "spec.adresses"),
            "{:?}",
            c.config.1
        );
        let events = diff(&Contents::default(), &c);
        assert!(
            matches!(events.as_slice(), [ClusterEvent::Config { errors, .. }] if !errors.is_empty())
        );
    }
}
