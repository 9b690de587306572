//! The `/metrics`, `/healthz` and `/readyz` endpoints every FerroLB binary serves.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the endpoints report: the metrics, and whether the component is ready.
pub trait Exporter: Send + Sync + 'static {
    /// The metrics in the Prometheus text format.
    fn render(&self) -> String;
    /// Whether `/readyz` answers 200.
    fn ready(&self) -> bool;
}

/// `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Serve the endpoints on `addr` until the task is dropped. The bound address is logged, so a
/// caller that asked for port 0 can find the port.
pub async fn serve<E: Exporter>(addr: SocketAddr, exporter: Arc<E>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "metrics and health endpoints listening on http://{bound}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let exporter = exporter.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let exporter = exporter.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &*exporter)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn respond<B, E: Exporter>(req: &Request<B>, exporter: &E) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, exporter.render()),
        "/healthz" => (StatusCode::OK, "ok\n".to_string()),
        "/readyz" if exporter.ready() => (StatusCode::OK, "ready\n".to_string()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not synced yet\n".to_string(),
        ),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}
