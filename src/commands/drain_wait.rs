//! `zerodrop drain-wait`: serve the preStop calls until SIGTERM (which comes after the app's);
//! with `--await`, the postStart hook's check that it serves.

use crate::cli::DrainWaitArgs;
use crate::drain::waiter::{Config, router};
use crate::server::listener::{Connections, accept_loop};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use zerodrop_core::drain::Bounds;
use zerodrop_core::engine::waiter::READY_PATH;

/// Connections at once: the kubelet's hook calls and probes need a handful.
const MAX_CONNECTIONS: usize = 64;
/// How often `--await` asks: the app's start waits on it.
const AWAIT_EVERY: Duration = Duration::from_millis(20);
/// One attempt's bound: a stalled answer on one address must not keep the other untried.
const AWAIT_ATTEMPT: Duration = Duration::from_secs(1);

pub async fn drain_wait(
    args: DrainWaitArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(within) = args.await_serving {
        return await_serving(args.listen, within).await;
    }
    anyhow::ensure!(
        args.min <= args.max && args.every > Duration::ZERO,
        "--min must not exceed --max, and --every must be above 0"
    );
    let listener = bind(args.listen).await?;
    let own = listener.local_addr()?;
    let config = Config {
        bounds: Bounds {
            min: args.min,
            quiet: args.quiet,
            max: args.max,
        },
        count: args.count.into(),
        ports: args.ports,
        own_port: own.port(),
        fallback: args.fallback,
        every: args.every,
    };
    tracing::info!(listen = %own, "drain waiter serving");
    // The pod's address is reachable by tenants: the admission port's bounds, fewer connections.
    let bounds = Connections {
        max: MAX_CONNECTIONS,
        ..Connections::DEFAULT
    };
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Refused connections are logged; the waiter has no metrics port.
    let refused = prometheus_client::metrics::counter::Counter::default();
    let serving = accept_loop(
        listener,
        None,
        router(config),
        &graceful,
        bounds,
        refused,
        stop_rx,
    );
    tokio::select! {
        () = serving => {}
        () = shutdown => {
            // SIGTERM comes after the app has exited: no drain is waiting any more.
            let _ = stop_tx.send(true);
        }
    }
    Ok(())
}

/// `[::]` where the pod has IPv6 (IPv4 callers arrive mapped), else the same port on 0.0.0.0.
async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(listen).await {
        Err(e) if listen.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            tracing::info!(error = %e, "no IPv6 here: listening on 0.0.0.0");
            tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, listen.port())).await
        }
        other => other,
    }
}

/// Until the waiter on `listen`'s port answers its ready path, at most `within`. The hook runs
/// in the waiter's own container, so loopback reaches it (IPv4 first: a `[::]` listener takes
/// it too, and a `0.0.0.0` one only takes that).
async fn await_serving(listen: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let targets: Vec<SocketAddr> = if listen.ip().is_unspecified() {
        vec![
            (Ipv4Addr::LOCALHOST, listen.port()).into(),
            (Ipv6Addr::LOCALHOST, listen.port()).into(),
        ]
    } else {
        vec![listen]
    };
    let asking = async {
        loop {
            for target in &targets {
                let answer = tokio::time::timeout(AWAIT_ATTEMPT, serves(*target)).await;
                if matches!(answer, Ok(Ok(true))) {
                    return;
                }
            }
            tokio::time::sleep(AWAIT_EVERY).await;
        }
    };
    tokio::time::timeout(within, asking).await.map_err(|_| {
        anyhow::anyhow!(
            "the drain waiter on port {} did not answer within {within:?}",
            listen.port()
        )
    })
}

/// One GET of the ready path: whether it answered 2xx.
async fn serves(target: SocketAddr) -> anyhow::Result<bool> {
    let stream = tokio::net::TcpStream::connect(target).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::get(READY_PATH)
        .header(hyper::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())?;
    Ok(sender.send_request(request).await?.status().is_success())
}
