//! A stateful fake Kubernetes API server, over real HTTP on 127.0.0.1, for the Kubernetes-mode
//! tests of the controller and the speaker. kube-rs talks to it exactly as it talks to a
//! cluster. A dev-only crate: nothing ships with it.
//!
//! Supported: GET (single object, list with a list resourceVersion and an optional
//! equality-based `labelSelector`, `?watch=1` streams of newline-delimited
//! ADDED/MODIFIED/DELETED/BOOKMARK events from a resourceVersion), POST, PUT (409 on a stale
//! `metadata.resourceVersion`), PATCH (JSON merge patch; strategic-merge and apply patches are
//! applied as merge patches, and an apply patch creates a missing object), DELETE, and the
//! `/status` subresource of Services, Namespaces, Nodes, IPAddressPools, ServiceL2Statuses and
//! ServiceBGPStatuses.
//! One resourceVersion counter for everything. Resources: see [`store::RESOURCES`].
//!
//! Knobs: [`FakeApiServer::inject_conflicts`] (409 on the next N writes to matching paths),
//! [`FakeApiServer::expire_history`] (watches from older versions get the real server's 410
//! ERROR event, forcing a relist), [`FakeApiServer::go_away`] / [`FakeApiServer::come_back`]
//! (drop every connection and stop listening; listen again on the same port, same state).
//!
//! Not supported: set-based label selectors, label selectors on watches, field selectors,
//! collection deletes, pagination (`limit` is ignored: one page), JSON patch, server-side
//! apply field ownership (managers, conflicts), owner-reference garbage collection, admission,
//! RBAC.

mod http;
pub mod store;

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use store::{Store, find_key};

pub use store::WriteLog;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use http::CLIENT_HEADER;

/// Proxy variables kube honours; a binary under test talks to 127.0.0.1 only, so they are
/// removed from its environment.
pub const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub struct Shared {
    store: Mutex<Store>,
    /// Bumped to end every open watch stream (cleanly: the client sees the stream end).
    watch_kill: watch::Sender<u64>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl FakeApiServer {
    /// Start on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = bind("127.0.0.1:0".parse().expect("address")).await;
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            watch_kill: watch::channel(0).0,
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        FakeApiServer {
            shared,
            addr,
            server: Mutex::new(Some(server)),
        }
    }

    /// Write a kubeconfig pointing at this server into `dir`, for tests that run a real binary.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: fake, user: {{}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server; `name` marks its requests in [`Self::writes`].
    pub fn client(&self, name: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().expect("server URL"));
        config.headers.push((
            hyper::header::HeaderName::from_static(CLIENT_HEADER),
            hyper::header::HeaderValue::from_str(name).expect("header value"),
        ));
        kube::Client::try_from(config).expect("kube client")
    }

    /// Go away mid-watch: stop listening and drop every connection, watches included.
    pub async fn go_away(&self) {
        let task = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Come back on the same port, with the same state.
    pub async fn come_back(&self) {
        let listener = bind(self.addr).await;
        let task = tokio::spawn(serve(listener, self.shared.clone()));
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// The next `count` writes whose path contains `path_contains` fail with 409 Conflict.
    pub fn inject_conflicts(&self, path_contains: &str, count: usize) {
        self.shared.store().inject_conflicts(path_contains, count);
    }

    /// How many watches were answered with 410 Gone.
    pub fn gone_served(&self) -> usize {
        self.shared.store().gone_served
    }

    /// How many injected conflicts were served.
    pub fn conflicts_served(&self) -> usize {
        self.shared.store().conflicts_served
    }

    /// Apply `changes` without any watch seeing them, then forget the history and end every
    /// watch stream: the watchers come back with a resourceVersion that is now too old, get
    /// 410 Gone and must relist to learn about `changes`.
    pub fn expire_history(&self, changes: impl FnOnce(&mut Store)) {
        let mut store = self.shared.store();
        self.shared.watch_kill.send_modify(|e| *e += 1);
        store.set_silent(true);
        changes(&mut store);
        store.set_silent(false);
        store.compact();
    }

    /// Every write so far.
    pub fn writes(&self) -> Vec<WriteLog> {
        self.shared.store().writes.clone()
    }

    /// Every read (GET: single objects, lists and watches) so far; `status` is the answer's.
    pub fn reads(&self) -> Vec<WriteLog> {
        self.shared.store().reads.clone()
    }

    /// Create an object as a user would (POST semantics, but `status` is kept, so tests can
    /// set up Services that already carry addresses). `resource` as in [`store::RESOURCES`]:
    /// `services`, `namespaces`, `ferrolb.io/ipaddresspools`, ...
    pub fn create(&self, resource: &str, obj: Value) -> Value {
        self.shared.store().put(resource, obj)
    }

    /// Change an object in place (an update by some user).
    pub fn update(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Value {
        let def = find_key(resource);
        let mut store = self.shared.store();
        let mut obj = store
            .get(def, ns, name)
            .unwrap_or_else(|| panic!("fake update: no {resource} {ns}/{name}"));
        f(&mut obj);
        store
            .replace(def, ns, name, obj)
            .unwrap_or_else(|e| panic!("fake update {resource}: {}", e.message))
    }

    pub fn delete(&self, resource: &str, ns: &str, name: &str) {
        self.shared.store().remove(resource, ns, name);
    }

    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.shared.store().get(find_key(resource), ns, name)
    }

    /// Every object of `resource`, in every namespace.
    pub fn list(&self, resource: &str) -> Vec<Value> {
        self.shared.store().list(find_key(resource), None)
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

async fn bind(addr: SocketAddr) -> TcpListener {
    // SO_REUSEADDR: coming back on the same port while old connections sit in TIME_WAIT.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind 127.0.0.1");
    socket.listen(128).expect("listen")
}

/// Accept connections until aborted; aborting drops the listener and every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| http::handle(shared.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
