//! Connection bounds: an idle keep-alive connection outlives the header timeout (the client
//! closes it, not us), a head that stalls does not, and open connections are capped (counted).

use crate::server_tls::{bounds, connect, mount, pair, raw, start_with};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;
use zerodrop::server::Limits;
use zerodrop::server::listener::Connections;

const REQUEST: &[u8] = b"GET /nowhere HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// Sends a request and reads its answer's head (the 404 has no body); "" if the server closed.
async fn exchange(conn: &mut TlsStream<tokio::net::TcpStream>) -> String {
    if conn.write_all(REQUEST).await.is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_outlive_the_header_timeout_and_connections_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair();
    mount(dir.path(), "1", &p.cert, &p.key);
    let connections = Connections {
        max: 2,
        ..bounds(Duration::from_millis(300))
    };
    let (server, metrics) = start_with(dir.path(), None, Limits::default(), connections).await;
    let port = server.tls_addr.port();
    tokio::spawn(server.serve(std::future::pending()));

    let mut kept = raw(port, &p.ca).await;
    assert!(exchange(&mut kept).await.starts_with("HTTP/1.1 404"));
    // Idle for four header timeouts: still open, the next request is answered on it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = exchange(&mut kept).await;
    assert!(
        again.starts_with("HTTP/1.1 404"),
        "idle connection closed: {again:?}"
    );

    // A head that stalls is cut off after the header timeout, however long the idle one is.
    let mut stalled = raw(port, &p.ca).await;
    stalled
        .write_all(b"GET /nowhere HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stalled head kept {:?}",
        started.elapsed()
    );

    // Two connections are the cap: a third is closed before its handshake completes. (The
    // stalled one's slot is given back just after its close reaches us.)
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = raw(port, &p.ca).await;
    let third = tokio::time::timeout(Duration::from_secs(5), connect(port, &p.ca)).await;
    assert!(matches!(third, Ok(Err(_))), "a third connection was served");
    // The apiserver would fail that call open: it is counted like a 503.
    let text = metrics.encode();
    assert!(text.contains("zerodrop_overloaded_total 1"), "{text}");
    drop(second);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        connect(port, &p.ca).await.is_ok(),
        "a freed slot was not reused"
    );
}
