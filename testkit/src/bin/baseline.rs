//! Benchmark baseline: the same TLS stack and accept loop as `zerodrop serve`, answering every
//! AdmissionReview with `allowed: true` and the uid after decoding the same request type.
//! Usage: baseline LISTEN_ADDR CA_OUT_FILE

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use std::sync::Arc;
use zerodrop_core::admission::review::{self, Response};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn allow(body: Bytes) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let uid = review::decode(&body).map(|r| r.uid).unwrap_or_default();
    (
        [("content-type", "application/json")],
        review::encode(
            &uid,
            &Response {
                allowed: true,
                ..Response::default()
            },
        ),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9443".into());
    let ca_out = args.next().unwrap_or_else(|| "/tmp/baseline-ca.pem".into());
    let ips = ["127.0.0.1".parse()?];
    let bundle = zerodrop::certs::generate(&["localhost".into()], &ips, time::Duration::days(1))?;
    std::fs::write(&ca_out, &bundle.ca_cert_pem)?;
    let loaded = zerodrop::certs::load_pair(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())?;
    let config =
        zerodrop::server::tls::server_config(zerodrop::certs::Resolver::new(loaded.key), None)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("baseline listening on {}", listener.local_addr()?);
    let app = Router::new().route("/mutate", post(allow));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let bounds = zerodrop::server::listener::Connections::DEFAULT;
    zerodrop::server::listener::accept_loop(
        listener,
        Some(acceptor),
        app,
        &graceful,
        bounds,
        Default::default(),
        stop_rx,
    )
    .await;
    Ok(())
}
