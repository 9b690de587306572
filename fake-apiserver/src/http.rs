//! The fake API server's HTTP side: REST routing the way kube-apiserver lays out paths, the
//! verbs, the `/status` subresource, and watch streams.

use super::Shared;
use super::store::{self, ApiError, Record, ResourceDef, Store, merge_patch, meta_mut};
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Header naming the test client that sent a request (set through kube's `Config::headers`).
pub const CLIENT_HEADER: &str = "x-fake-client";

/// What a path addresses.
struct Target {
    def: &'static ResourceDef,
    /// `group/version` as requested, for `apiVersion` in answers.
    api_version: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let (namespace, plural, name, sub) = match rest {
        // `namespaces/<name>/status` is the Namespace's own subresource, not a list.
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            (None, "namespaces", Some(*ns), Some(*sub))
        }
        ["namespaces", ns, plural, tail @ ..] => (
            Some(*ns),
            *plural,
            tail.first().copied(),
            tail.get(1).copied(),
        ),
        [plural, tail @ ..] => (None, *plural, tail.first().copied(), tail.get(1).copied()),
        [] => return None,
    };
    let def = store::find(group, plural)?;
    Some(Target {
        def,
        api_version,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    })
}

fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let client = req
        .headers()
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = query(&req);
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(error(&ApiError::new(400, "BadRequest", "unreadable body"))),
    };
    let Some(target) = parse_path(&path) else {
        return Ok(error(&ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )));
    };
    if method == Method::GET {
        let watching = matches!(q.get("watch").map(String::as_str), Some("1" | "true"));
        let response = match (&target.name, watching) {
            (_, true) => watch_stream(&shared, &target, &q),
            (None, false) => list(&shared, &target, &q),
            (Some(name), false) => {
                let store = shared.store();
                match store.get(target.def, ns_of(&target), name) {
                    Some(obj) => ok(200, with_type(obj, &target)),
                    None => error(&ApiError::not_found(target.def, name)),
                }
            }
        };
        shared.store().reads.push(store::WriteLog {
            client,
            method: if watching { "WATCH" } else { "GET" }.into(),
            path,
            status: response.status().as_u16(),
        });
        return Ok(response);
    }
    let result = {
        let mut store = shared.store();
        let result = if store.take_conflict(&path) {
            Err(conflict(target.def, target.name.as_deref().unwrap_or("")))
        } else {
            write(&mut store, &method, &target, &content_type, &body)
        };
        let status = result.as_ref().map_or_else(|e| e.code, |(code, _)| *code);
        store.writes.push(store::WriteLog {
            client,
            method: method.to_string(),
            path,
            status,
        });
        result
    };
    Ok(match result {
        Ok((code, obj)) => ok(code, with_type(obj, &target)),
        Err(e) => error(&e),
    })
}

fn ns_of(target: &Target) -> &str {
    if target.def.namespaced {
        target.namespace.as_deref().unwrap_or("")
    } else {
        ""
    }
}

fn write(
    store: &mut Store,
    method: &Method,
    target: &Target,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let ns = ns_of(target);
    let def = target.def;
    let parse = || -> Result<Value, ApiError> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::new(400, "BadRequest", format!("bad JSON: {e}")))
    };
    let status_only = match target.subresource.as_deref() {
        None => false,
        Some("status") if def.status => true,
        Some(other) => {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("no subresource {other}"),
            ));
        }
    };
    match (method.clone(), &target.name) {
        (Method::POST, None) => {
            let mut obj = parse()?;
            if def.status {
                // Status is the controller's to write, through /status.
                if let Some(o) = obj.as_object_mut() {
                    o.remove("status");
                }
            }
            store.create(def, ns, obj).map(|o| (201, o))
        }
        (Method::PUT, Some(name)) => {
            let new = parse()?;
            let old = current(store, def, ns, name, &new)?;
            let merged = combine(def, status_only, old, new);
            store.replace(def, ns, name, merged).map(|o| (200, o))
        }
        (Method::PATCH, Some(name)) => {
            let patch = parse()?;
            let kind = content_type.split(';').next().unwrap_or("").trim();
            if !matches!(
                kind,
                "application/merge-patch+json"
                    | "application/strategic-merge-patch+json"
                    | "application/apply-patch+yaml"
            ) {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("patch type {kind} not supported by the fake"),
                ));
            }
            if kind == "application/apply-patch+yaml"
                && !status_only
                && store.get(def, ns, name).is_none()
            {
                // Server-side apply creates what does not exist (status is ignored, as by
                // a POST, when it has its own subresource).
                let mut obj = patch;
                if let Some(o) = obj.as_object_mut()
                    && def.status
                {
                    o.remove("status");
                }
                meta_mut(&mut obj).insert("name".into(), name.clone().into());
                return store.create(def, ns, obj).map(|o| (201, o));
            }
            let old = current(store, def, ns, name, &patch)?;
            // Strategic and apply patches are treated as merge patches: exact for the maps
            // and whole-list replacements the controller sends.
            let mut patched = old.clone();
            merge_patch(&mut patched, &patch);
            let merged = combine(def, status_only, old, patched);
            store.replace(def, ns, name, merged).map(|o| (200, o))
        }
        (Method::DELETE, Some(name)) => store.delete(def, ns, name).map(|o| (200, o)),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} not allowed here"),
        )),
    }
}

/// The stored object, after checking the optimistic-concurrency precondition of `incoming`.
fn current(
    store: &Store,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    incoming: &Value,
) -> Result<Value, ApiError> {
    let old = store
        .get(def, ns, name)
        .ok_or_else(|| ApiError::not_found(def, name))?;
    let want = incoming
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    let have = old
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if want.is_some_and(|w| !w.is_empty() && Some(w) != have) {
        return Err(conflict(def, name));
    }
    Ok(old)
}

fn conflict(def: &ResourceDef, name: &str) -> ApiError {
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            def.plural
        ),
    )
}

/// The object to store after a write of `new` over `old`: identity fields never change; with
/// a status subresource, object writes keep the status and status writes change only it.
fn combine(def: &ResourceDef, status_only: bool, old: Value, new: Value) -> Value {
    let mut out = if status_only {
        old.clone()
    } else {
        new.clone()
    };
    if def.status {
        let status = if status_only {
            new.get("status")
        } else {
            old.get("status")
        };
        if let Some(o) = out.as_object_mut() {
            match status {
                Some(s) => o.insert("status".into(), s.clone()),
                None => o.remove("status"),
            };
        }
    }
    let mut old = old;
    let old_meta = meta_mut(&mut old).clone();
    let meta = meta_mut(&mut out);
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    out
}

fn list(shared: &Shared, target: &Target, q: &BTreeMap<String, String>) -> Response<Body> {
    let selector = match q.get("labelSelector").map(|s| LabelSelector::parse(s)) {
        None => LabelSelector::default(),
        Some(Ok(s)) => s,
        Some(Err(e)) => return error(&e),
    };
    let store = shared.store();
    let items: Vec<Value> = store
        .list(
            target.def,
            target
                .namespace
                .as_deref()
                .filter(|_| target.def.namespaced),
        )
        .into_iter()
        .filter(|o| selector.matches(o))
        .map(|o| with_type(o, target))
        .collect();
    ok(
        200,
        json!({
            "apiVersion": target.api_version,
            "kind": format!("{}List", target.def.kind),
            "metadata": { "resourceVersion": store.rv().to_string() },
            "items": items,
        }),
    )
}

/// An equality-based label selector (`a=b,c!=d,e,!f`), as lists take it in `labelSelector`.
#[derive(Debug, Default)]
struct LabelSelector(Vec<(String, Requirement)>);

#[derive(Debug)]
enum Requirement {
    Equals(String),
    NotEquals(String),
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let mut out = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let unsupported = || {
                ApiError::new(
                    400,
                    "BadRequest",
                    format!("label selector term {term:?} not supported by the fake"),
                )
            };
            if term.contains(['(', ')', ' ']) {
                return Err(unsupported());
            }
            let (key, req) = if let Some((k, v)) = term.split_once("!=") {
                (k, Requirement::NotEquals(v.into()))
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, Requirement::Equals(v.into()))
            } else if let Some(k) = term.strip_prefix('!') {
                (k, Requirement::DoesNotExist)
            } else {
                (term, Requirement::Exists)
            };
            if key.is_empty() {
                return Err(unsupported());
            }
            out.push((key.to_string(), req));
        }
        Ok(LabelSelector(out))
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        self.0.iter().all(|(key, req)| {
            let value = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
            match req {
                Requirement::Equals(v) => value == Some(v.as_str()),
                Requirement::NotEquals(v) => value != Some(v.as_str()),
                Requirement::Exists => value.is_some(),
                Requirement::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// Per-watch state, advanced by the response body stream.
struct Watch {
    def: &'static ResourceDef,
    api_version: String,
    resource: String,
    namespace: Option<String>,
    backlog: VecDeque<Value>,
    changes: broadcast::Receiver<Arc<Record>>,
    /// The newest resourceVersion this watch has passed, for bookmarks.
    last_rv: u64,
    bookmarks: bool,
    deadline: tokio::time::Instant,
    kill: watch::Receiver<u64>,
    done: bool,
}

fn watch_stream(
    shared: &Arc<Shared>,
    target: &Target,
    q: &BTreeMap<String, String>,
) -> Response<Body> {
    let namespace = target.namespace.clone().filter(|_| target.def.namespaced);
    let from = q.get("resourceVersion").cloned().unwrap_or_default();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(300u64);
    let mut store = shared.store();
    let (backlog, changes, last_rv) = if from.is_empty() || from == "0" {
        // "Any version": start with the current state as ADDED events, like the real server.
        let current = store.list(target.def, namespace.as_deref());
        let backlog = current
            .into_iter()
            .map(|o| event("ADDED", with_type(o, target)))
            .collect();
        match store.watch_from(&target.def.key(), namespace.as_deref(), store.rv()) {
            Ok((_, rx)) => (backlog, rx, store.rv()),
            Err(_) => unreachable!("the current version is never compacted"),
        }
    } else {
        let from: u64 = from.parse().unwrap_or(0);
        match store.watch_from(&target.def.key(), namespace.as_deref(), from) {
            Ok((records, rx)) => {
                let backlog = records
                    .into_iter()
                    .map(|r| event(r.change.word(), with_type(r.object, target)))
                    .collect();
                (backlog, rx, from)
            }
            Err(compacted) => {
                store.gone_served += 1;
                // As kube-apiserver: a 200 whose only event is an ERROR Status with code 410.
                let gone = ApiError::new(
                    410,
                    "Expired",
                    format!("too old resource version: {from} ({compacted})"),
                );
                let line = line(&json!({ "type": "ERROR", "object": gone.to_status() }));
                return streaming(futures::stream::iter([line]).boxed());
            }
        }
    };
    drop(store);
    let state = Watch {
        def: target.def,
        api_version: target.api_version.clone(),
        resource: target.def.key(),
        namespace,
        backlog,
        changes,
        last_rv,
        bookmarks: q
            .get("allowWatchBookmarks")
            .is_some_and(|v| v == "true" || v == "1"),
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
        kill: shared.watch_kill.subscribe(),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut w| async move {
        let line = w.next_line().await?;
        Some((line, w))
    });
    streaming(stream.boxed())
}

impl Watch {
    async fn next_line(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if let Some(ev) = self.backlog.pop_front() {
            return Some(line(&ev));
        }
        let bookmark_every = Duration::from_millis(500);
        loop {
            tokio::select! {
                change = self.changes.recv() => match change {
                    Ok(r) => {
                        self.last_rv = self.last_rv.max(r.rv);
                        let mine = r.resource == self.resource
                            && self.namespace.as_deref().is_none_or(|n| n == r.namespace);
                        if mine {
                            let obj = self.typed(r.object.clone());
                            return Some(line(&event(r.change.word(), obj)));
                        }
                    }
                    // Fell behind or the store is gone: end; the client resumes or relists.
                    Err(_) => return None,
                },
                _ = tokio::time::sleep(bookmark_every), if self.bookmarks => {
                    let bm = json!({
                        "type": "BOOKMARK",
                        "object": {
                            "kind": self.def.kind, "apiVersion": self.api_version,
                            "metadata": { "resourceVersion": self.last_rv.to_string() },
                        },
                    });
                    return Some(line(&bm));
                }
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = self.kill.changed() => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn typed(&self, mut obj: Value) -> Value {
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), self.api_version.clone().into());
            o.insert("kind".into(), self.def.kind.into());
        }
        obj
    }
}

fn event(kind: &str, object: Value) -> Value {
    json!({ "type": kind, "object": object })
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn with_type(mut obj: Value, target: &Target) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), target.api_version.clone().into());
        o.insert("kind".into(), target.def.kind.into());
    }
    obj
}

fn streaming(lines: futures::stream::BoxStream<'static, Bytes>) -> Response<Body> {
    let body = StreamBody::new(lines.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let mut resp = Response::new(UnsyncBoxBody::new(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn ok(code: u16, v: Value) -> Response<Body> {
    respond(code, &v)
}

fn error(e: &ApiError) -> Response<Body> {
    respond(e.code, &e.to_status())
}

fn respond(code: u16, v: &Value) -> Response<Body> {
    let body = Full::new(Bytes::from(v.to_string()));
    let mut resp = Response::new(UnsyncBoxBody::new(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
