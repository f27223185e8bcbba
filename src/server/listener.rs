//! The TLS accept loop: TCP_NODELAY, bounded handshakes, HTTP/2 or HTTP/1.1, graceful close.

use crate::metrics::{Metrics, ProtocolLabels};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper buffers up to this much of a connection's incoming bytes (its default is ~400 KiB):
/// hundreds of connections pushing large bodies must not cost hundreds of MiB before the byte
/// budget has even seen them. Headers and TLS records fit many times over.
const READ_BUFFER: usize = 32 * 1024;
/// HTTP/2's equivalents: bytes a peer may send before we read them, per stream and per
/// connection (its defaults let one connection buffer MiBs), and header bytes per request.
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 256 * 1024;
const MAX_HEADER_LIST: u32 = 32 * 1024;
/// Streams per connection: the apiserver opens another connection beyond it; the in-flight
/// limit still bounds the work.
const MAX_STREAMS: u32 = 128;
/// A peer that stops answering pings is dropped with its streams.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 when the client offers it (the apiserver does): at shutdown a GOAWAY tells it, in
/// the protocol, which requests were not taken, and it retries them on another connection.
/// HTTP/1.1 has no such signal: closing an idle keep-alive connection races with a request the
/// apiserver is sending on it, which then fails (EOF) and, with failurePolicy Ignore, admits
/// its pod unprotected — measured in experiments/proof/self_upgrade.py.
fn builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .max_buf_size(READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(PING_EVERY)
        .keep_alive_timeout(PING_TIMEOUT);
    builder
}

pub async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    graceful: &GracefulShutdown,
    header_timeout: Duration,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = builder(header_timeout);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        // Small request/response pairs must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let protocol = match tls.get_ref().1.alpn_protocol() {
                Some(b"h2") => "h2",
                _ => "http/1.1",
            };
            metrics
                .connections
                .get_or_create(&ProtocolLabels { protocol })
                .inc();
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
