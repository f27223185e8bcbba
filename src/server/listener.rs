//! The accept loop (TLS, or plain HTTP for the drain waiter): bounded connections and
//! handshakes, HTTP/1.1 keep-alive that the client closes first, slow request heads cut off,
//! graceful close.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prometheus_client::metrics::counter::Counter;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper buffers up to this much of a connection's incoming bytes (its default is ~400 KiB):
/// hundreds of connections pushing large bodies must not cost hundreds of MiB before the byte
/// budget has even seen them. Headers and TLS records fit many times over.
const READ_BUFFER: usize = 32 * 1024;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    /// From a request head's first byte (or the connection's start) to the whole head.
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this long. It must exceed the client's
    /// own idle timeout (the apiserver's: 90 s) so the client always closes first: a server
    /// closing an idle connection races with a request the client is sending on it, which
    /// then fails (EOF) and, with failurePolicy Ignore, admits its pod unprotected.
    pub idle_timeout: Duration,
    /// Open connections at most; beyond, a new one is closed at once.
    pub max: usize,
}

impl Connections {
    /// `zerodrop serve`'s defaults (its flags say the same).
    pub const DEFAULT: Connections = Connections {
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(120),
        max: 512,
    };
}

/// `acceptor`: TLS, or `None` for plain HTTP. Handlers see the peer as `ConnectInfo<SocketAddr>`.
/// `refused` counts connections closed for the cap.
pub async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    graceful: &GracefulShutdown,
    bounds: Connections,
    refused: Counter,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(bounds.max));
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // For the apiserver a refused connection is a failed call: with failurePolicy
            // Ignore its pod goes unprotected. Counted (and alerted on) like a 503.
            refused.inc();
            tracing::warn!(%peer, max = bounds.max, "too many connections; a new one closed");
            continue;
        };
        // Small request/response pairs must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return serve(tcp, peer, app, watcher, bounds).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve(tls, peer, app, watcher, bounds).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// One connection, until it ends, is cut off for a slow head, or is closed at shutdown.
async fn serve<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: IO,
    peer: SocketAddr,
    app: Router,
    watcher: Watcher,
    bounds: Connections,
) {
    let head = Arc::new(Head::default());
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // hyper's header timer also runs while a keep-alive connection is idle: here it is the
        // idle timeout; `Head` times the heads themselves.
        .header_read_timeout(bounds.idle_timeout)
        .keep_alive(true)
        .max_buf_size(READ_BUFFER)
        .serve_connection(
            TokioIo::new(Watched {
                inner: io,
                head: head.clone(),
            }),
            service(app, head.clone(), peer),
        );
    tokio::select! {
        served = watcher.watch(conn) => if let Err(e) = served {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        },
        () = head.overdue(bounds.header_timeout) => {
            tracing::debug!(%peer, "request head not received in time; closed");
        }
    }
}

/// The app, telling `Head` when a request's head has arrived and when its answer is ready.
fn service(
    app: Router,
    head: Arc<Head>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        head.received();
        req.extensions_mut().insert(ConnectInfo(peer));
        let (mut app, head) = (app.clone(), head.clone());
        async move {
            let answered = app.call(req.map(axum::body::Body::new)).await;
            head.answered();
            answered
        }
    })
}

/// When the head of the request being read began to arrive; none while a request is being
/// answered (its body arrives then, bounded by the body timeout).
struct Head {
    since: Mutex<Option<Instant>>,
    answering: AtomicBool,
}

impl Default for Head {
    /// A new connection owes its first head from the start.
    fn default() -> Head {
        Head {
            since: Mutex::new(Some(Instant::now())),
            answering: AtomicBool::new(false),
        }
    }
}

impl Head {
    fn bytes_arrived(&self) {
        if !self.answering.load(Ordering::Acquire) {
            let mut since = self.since.lock().unwrap_or_else(|p| p.into_inner());
            since.get_or_insert_with(Instant::now);
        }
    }

    fn received(&self) {
        self.answering.store(true, Ordering::Release);
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn answered(&self) {
        self.answering.store(false, Ordering::Release);
    }

    /// Resolves once a head has been arriving for longer than `limit`.
    async fn overdue(&self, limit: Duration) {
        let tick = (limit / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            tokio::time::sleep(tick).await;
            let since = *self.since.lock().unwrap_or_else(|p| p.into_inner());
            if since.is_some_and(|at| at.elapsed() > limit) {
                return;
            }
        }
    }
}

/// The connection's stream, noting when bytes arrive for `Head`.
struct Watched<T> {
    inner: T,
    head: Arc<Head>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.head.bytes_arrived();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    // Passed through: without them hyper copies each answer's head and body into one buffer.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
