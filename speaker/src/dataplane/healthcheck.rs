//! The health-check node ports of Services with `externalTrafficPolicy: Local`, as kube-proxy
//! serves them: an HTTP server on `spec.healthCheckNodePort`, on every address of the node,
//! answering any request with `200` when this node has a local endpoint of the Service and
//! `503` when it has none, so an external load balancer sends traffic only to nodes that
//! would not drop it.
//!
//! ```text
//!  driver ──apply(table.health_checks)──▶ HealthChecks ──watch::Sender<HealthCheck>──┐
//!                                           one listener task per port ◀─────────────┘
//!                                           (a JoinSet of its connections)
//! ```
//!
//! A listener starts when a health check appears and stops when it leaves; in between, a new
//! count (or Service) for the same port is handed to the running listener through a `watch`
//! channel, so the port never closes while endpoints come and go.

use ferrolb_shared::ipvs::model::HealthCheck;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Open connections per port beyond which new ones are closed at once: the port is reachable
/// from anywhere the node is, so a flood of idle connections must not exhaust the speaker.
pub const MAX_CONNECTIONS: usize = 256;
/// A client that has not sent a whole request header within this time is disconnected
/// (idle keep-alive connections included).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A port that could not be opened. The listener is retried with the next table.
#[derive(Debug, thiserror::Error)]
#[error("health-check node port {port} of Service {service}: cannot listen: {source}")]
pub struct HealthCheckError {
    pub port: u16,
    pub service: String,
    #[source]
    pub source: std::io::Error,
}

struct Listener {
    state: watch::Sender<HealthCheck>,
    task: JoinHandle<()>,
}

/// The running health-check listeners, kept in step with the table's health checks.
pub struct HealthChecks {
    /// Where to listen: `[::]` (all node addresses, both families) in the speaker.
    bind: IpAddr,
    listeners: BTreeMap<u16, Listener>,
}

impl HealthChecks {
    pub fn new(bind: IpAddr) -> Self {
        HealthChecks {
            bind,
            listeners: BTreeMap::new(),
        }
    }

    /// Listen on every port of `checks` and on no other: stop listeners whose health check
    /// left, hand new counts to the running ones, start the new ones.
    pub async fn apply(&mut self, checks: &BTreeMap<u16, HealthCheck>) -> Vec<HealthCheckError> {
        self.listeners.retain(|port, l| {
            let keep = checks.contains_key(port);
            if !keep {
                l.task.abort();
                tracing::info!(port, "health-check node port closed");
            }
            keep
        });
        let mut errors = Vec::new();
        for (port, hc) in checks {
            if let Some(l) = self.listeners.get(port) {
                l.state.send_if_modified(|old| {
                    let changed = old != hc;
                    if changed {
                        *old = hc.clone();
                    }
                    changed
                });
                continue;
            }
            match bind(self.bind, *port).await {
                Ok(listener) => {
                    tracing::info!(port, service = %hc.service, "health-check node port listening");
                    let (state, rx) = watch::channel(hc.clone());
                    let task = tokio::spawn(serve(listener, rx));
                    self.listeners.insert(*port, Listener { state, task });
                }
                Err(source) => errors.push(HealthCheckError {
                    port: *port,
                    service: hc.service.to_string(),
                    source,
                }),
            }
        }
        errors
    }

    /// The ports listened on.
    pub fn ports(&self) -> Vec<u16> {
        self.listeners.keys().copied().collect()
    }

    /// Close every listener and its connections.
    pub fn shutdown(&mut self) {
        for (_, l) in std::mem::take(&mut self.listeners) {
            l.task.abort();
        }
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Bind `addr:port`; `[::]` falls back to `0.0.0.0` on a node without IPv6.
async fn bind(addr: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::new(addr, port)).await {
        Err(e) if addr == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
            TcpListener::bind(v4).await.map_err(|_| e)
        }
        r => r,
    }
}

/// Accept and answer until the task is aborted, which also drops every open connection.
async fn serve(listener: TcpListener, state: watch::Receiver<HealthCheck>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::debug!("health-check accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if connections.len() >= MAX_CONNECTIONS {
                    continue; // dropping the stream closes it
                }
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        // Every request gets the current answer, whatever its method or path.
                        let response = respond(&state.borrow());
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// kube-proxy's answer: the status says whether this node has a local endpoint; the body
/// names the Service and counts them; `X-Load-Balancing-Endpoint-Weight` carries the count
/// for load balancers that weight nodes by it.
pub fn respond(hc: &HealthCheck) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "service": {"namespace": hc.service.namespace, "name": hc.service.name},
        "localEndpoints": hc.local_endpoints,
    });
    let text = format!("{body:#}\n");
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = if hc.local_endpoints > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "x-load-balancing-endpoint-weight",
        HeaderValue::from(hc.local_endpoints),
    );
    response
}

#[cfg(test)]
mod tests;
