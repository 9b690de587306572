//! The fake API server's state: objects per resource, one global resourceVersion counter,
//! the watch history, and the test knobs (injected conflicts, history expiry).
//!
//! Every change is appended to the history and broadcast while the lock is held, so a watch
//! that takes its backlog and subscribes under the same lock sees every event exactly once.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A resource the server knows.
#[derive(Clone, Copy, Debug)]
pub struct ResourceDef {
    pub group: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the object keep the status, `/status` writes
    /// change only the status.
    pub status: bool,
}

impl ResourceDef {
    /// The key tests use: `services`, `coordination.k8s.io/leases`, `ferrolb.io/ipaddresspools`.
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}/{}", self.group, self.plural)
        }
    }
}

pub const RESOURCES: &[ResourceDef] = &[
    def("", "services", "Service", true, true),
    def("", "namespaces", "Namespace", false, true),
    def("", "nodes", "Node", false, true),
    def("", "secrets", "Secret", true, false),
    // Read by the speaker's `--on-stop auto` (its own pod and DaemonSet); the status
    // subresource is not needed.
    def("", "pods", "Pod", true, false),
    def("apps", "daemonsets", "DaemonSet", true, false),
    def(
        "discovery.k8s.io",
        "endpointslices",
        "EndpointSlice",
        true,
        false,
    ),
    def("", "events", "Event", true, false),
    def("events.k8s.io", "events", "Event", true, false),
    def("coordination.k8s.io", "leases", "Lease", true, false),
    def("ferrolb.io", "ipaddresspools", "IPAddressPool", true, true),
    def(
        "ferrolb.io",
        "l2advertisements",
        "L2Advertisement",
        true,
        false,
    ),
    def(
        "ferrolb.io",
        "bgpadvertisements",
        "BGPAdvertisement",
        true,
        false,
    ),
    def("ferrolb.io", "bgppeers", "BGPPeer", true, false),
    def("ferrolb.io", "bfdprofiles", "BFDProfile", true, false),
    def("ferrolb.io", "communities", "Community", true, false),
    def(
        "ferrolb.io",
        "servicel2statuses",
        "ServiceL2Status",
        true,
        true,
    ),
    def(
        "ferrolb.io",
        "servicebgpstatuses",
        "ServiceBGPStatus",
        true,
        true,
    ),
    def(
        "ferrolb.io",
        "configurationstates",
        "ConfigurationState",
        true,
        true,
    ),
    def(
        "ferrolb.io",
        "bgpsessionstates",
        "BGPSessionState",
        true,
        true,
    ),
];

const fn def(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        plural,
        kind,
        namespaced,
        status,
    }
}

pub fn find(group: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.group == group && d.plural == plural)
}

pub fn find_key(key: &str) -> &'static ResourceDef {
    RESOURCES
        .iter()
        .find(|d| d.key() == key)
        .unwrap_or_else(|| panic!("fake API server: unknown resource {key}"))
}

/// ADDED, MODIFIED or DELETED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One entry of the watch history.
#[derive(Clone, Debug)]
pub struct Record {
    pub rv: u64,
    pub resource: String,
    pub namespace: String,
    pub change: Change,
    pub object: Value,
}

/// A request the server answered, for assertions ("who wrote what", "who read what").
#[derive(Clone, Debug)]
pub struct WriteLog {
    pub client: String,
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// An API error, rendered as a `Status`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", def.plural),
        )
    }

    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        })
    }
}

pub type Key = (String, String);

pub struct Store {
    rv: u64,
    uids: u64,
    objects: BTreeMap<String, BTreeMap<Key, Value>>,
    history: Vec<Record>,
    /// Watches from a resourceVersion below this get `410 Gone`.
    compacted: u64,
    changes: broadcast::Sender<Arc<Record>>,
    /// (path substring, count): the next `count` writes whose path contains it get a 409.
    conflicts: Vec<(String, usize)>,
    pub conflicts_served: usize,
    /// Watches answered with 410 Gone.
    pub gone_served: usize,
    pub writes: Vec<WriteLog>,
    pub reads: Vec<WriteLog>,
    /// While set, changes are not broadcast to open watches.
    silent: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            rv: 1,
            uids: 0,
            objects: BTreeMap::new(),
            history: Vec::new(),
            compacted: 0,
            changes: broadcast::channel(1 << 16).0,
            conflicts: Vec::new(),
            conflicts_served: 0,
            gone_served: 0,
            writes: Vec::new(),
            reads: Vec::new(),
            silent: false,
        }
    }

    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn list(&self, def: &ResourceDef, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .get(&def.key())
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&def.key())?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Create, as POST does: fills in uid, creationTimestamp, generation, resourceVersion.
    pub fn create(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if def.namespaced && def.plural != "namespaces" && !self.namespace_exists(ns) {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            ));
        }
        let meta = meta_mut(&mut obj);
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) => format!("{prefix}{:05x}", self.uids + 1),
                None => {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        "metadata.name: Required value",
                    ));
                }
            },
        };
        let key = (ns.to_string(), name.clone());
        if self
            .objects
            .get(&def.key())
            .is_some_and(|m| m.contains_key(&key))
        {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", def.plural),
            ));
        }
        self.uids += 1;
        let meta = meta_mut(&mut obj);
        meta.insert("name".into(), name.into());
        if def.namespaced {
            meta.insert("namespace".into(), ns.into());
        }
        meta.insert(
            "uid".into(),
            format!("00000000-0000-4000-8000-{:012x}", self.uids).into(),
        );
        meta.insert("creationTimestamp".into(), now().into());
        meta.insert("generation".into(), 1.into());
        self.commit(def, key, Change::Added, obj)
    }

    /// Replace an existing object (the caller decides which parts may change).
    pub fn replace(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        let key = (ns.to_string(), name.to_string());
        let Some(old) = self.objects.get(&def.key()).and_then(|m| m.get(&key)) else {
            return Err(ApiError::not_found(def, name));
        };
        // As the real server: an update that changes nothing is not a write.
        if without_rv(old) == without_rv(&obj) {
            return Ok(old.clone());
        }
        self.commit(def, key, Change::Modified, obj)
    }

    pub fn delete(&mut self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = (ns.to_string(), name.to_string());
        let Some(obj) = self
            .objects
            .get_mut(&def.key())
            .and_then(|m| m.remove(&key))
        else {
            return Err(ApiError::not_found(def, name));
        };
        self.commit(def, key, Change::Deleted, obj)
    }

    fn commit(
        &mut self,
        def: &ResourceDef,
        key: Key,
        change: Change,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), self.rv.to_string().into());
        if change != Change::Deleted {
            self.objects
                .entry(def.key())
                .or_default()
                .insert(key.clone(), obj.clone());
        }
        let record = Record {
            rv: self.rv,
            resource: def.key(),
            namespace: key.0,
            change,
            object: obj.clone(),
        };
        self.history.push(record.clone());
        if !self.silent {
            let _ = self.changes.send(Arc::new(record));
        }
        Ok(obj)
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get("namespaces")
            .is_some_and(|m| m.contains_key(&(String::new(), ns.to_string())))
    }

    /// The history after `from` for `resource` (in `namespace`, if given), and a subscription
    /// to what follows; `Err` when `from` is older than the retained window.
    pub fn watch_from(
        &self,
        resource: &str,
        namespace: Option<&str>,
        from: u64,
    ) -> Result<(Vec<Record>, broadcast::Receiver<Arc<Record>>), u64> {
        if from < self.compacted {
            return Err(self.compacted);
        }
        let backlog = self
            .history
            .iter()
            .filter(|r| r.rv > from && r.resource == resource)
            .filter(|r| namespace.is_none_or(|n| n == r.namespace))
            .cloned()
            .collect();
        Ok((backlog, self.changes.subscribe()))
    }

    /// [`Store::create`] by resource key (`services`, `ferrolb.io/ipaddresspools`, ...).
    pub fn put(&mut self, resource: &str, obj: Value) -> Value {
        let def = find_key(resource);
        let ns = if def.namespaced {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        self.create(def, &ns, obj)
            .unwrap_or_else(|e| panic!("fake create {resource}: {}", e.message))
    }

    /// [`Store::delete`] by resource key.
    pub fn remove(&mut self, resource: &str, ns: &str, name: &str) {
        self.delete(find_key(resource), ns, name)
            .unwrap_or_else(|e| panic!("fake delete {resource}: {}", e.message));
    }

    pub fn set_silent(&mut self, silent: bool) {
        self.silent = silent;
    }

    /// Forget the history up to now: watches from any earlier resourceVersion get 410.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
    }

    pub fn inject_conflicts(&mut self, path_contains: &str, count: usize) {
        self.conflicts.push((path_contains.to_string(), count));
    }

    /// Whether the write to `path` must fail with an injected conflict (consumes one).
    pub fn take_conflict(&mut self, path: &str) -> bool {
        for (needle, left) in &mut self.conflicts {
            if *left > 0 && path.contains(needle.as_str()) {
                *left -= 1;
                self.conflicts_served += 1;
                return true;
            }
        }
        false
    }
}

/// `metadata` of `obj`, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Value::Object(map) = obj else {
        unreachable!("just made an object")
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn without_rv(obj: &Value) -> Value {
    let mut obj = obj.clone();
    meta_mut(&mut obj).remove("resourceVersion");
    obj
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(t) = target else { return };
    for (k, v) in patch {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
