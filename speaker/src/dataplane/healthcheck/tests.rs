use super::*;
use ferrolb_shared::alloc::ServiceKey;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn hc(port: u16, local_endpoints: usize) -> HealthCheck {
    HealthCheck {
        port,
        service: ServiceKey::new("default", "web"),
        local_endpoints,
    }
}

fn checks(list: &[HealthCheck]) -> BTreeMap<u16, HealthCheck> {
    list.iter().map(|h| (h.port, h.clone())).collect()
}

/// A port nothing listens on right now (the kernel's choice, released at once).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One keep-alive `GET /healthz` on `conn`: the status code and the body.
async fn get(conn: &mut BufReader<TcpStream>) -> (u16, String) {
    conn.get_mut()
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")
        .await
        .unwrap();
    let mut status = String::new();
    conn.read_line(&mut status).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.unwrap();
    let code = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, String::from_utf8(body).unwrap())
}

async fn connect(port: u16) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap())
}

#[test]
fn answers_as_kube_proxy_does() {
    let ok = respond(&hc(32000, 2));
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(ok.headers()["x-load-balancing-endpoint-weight"], "2");
    let unavailable = respond(&hc(32000, 0));
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        unavailable.headers()["x-load-balancing-endpoint-weight"],
        "0"
    );
}

#[tokio::test]
async fn listeners_follow_the_table_and_counts_change_in_place() {
    let (a, b) = (free_port(), free_port());
    let mut server = HealthChecks::new(IpAddr::from([127, 0, 0, 1]));
    let errors = server.apply(&checks(&[hc(a, 1), hc(b, 0)])).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(server.ports(), {
        let mut v = vec![a, b];
        v.sort();
        v
    });

    let mut conn = connect(a).await;
    let (status, body) = get(&mut conn).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["service"]["namespace"], "default");
    assert_eq!(json["service"]["name"], "web");
    assert_eq!(json["localEndpoints"], 1);
    assert_eq!(get(&mut connect(b).await).await.0, 503);

    // The last local endpoint leaves: the same connection (so the same listener) says 503.
    server.apply(&checks(&[hc(a, 0), hc(b, 0)])).await;
    let (status, body) = get(&mut conn).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"localEndpoints\": 0"), "{body}");

    // The health check of `a` leaves: its port closes, with its open connections.
    server.apply(&checks(&[hc(b, 3)])).await;
    assert_eq!(server.ports(), [b]);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(TcpStream::connect(("127.0.0.1", a)).await.is_err());
    assert_eq!(get(&mut connect(b).await).await.0, 200);

    server.shutdown();
    assert!(server.ports().is_empty());
}

#[tokio::test]
async fn a_busy_port_is_reported_and_retried() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let mut server = HealthChecks::new(IpAddr::from([127, 0, 0, 1]));
    let errors = server.apply(&checks(&[hc(port, 1)])).await;
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message.contains(&port.to_string()) && message.contains("default/web"),
        "{message}"
    );
    assert!(server.ports().is_empty());
    drop(blocker);
    let errors = server.apply(&checks(&[hc(port, 1)])).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(get(&mut connect(port).await).await.0, 200);
}
