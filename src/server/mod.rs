//! The webhook server: TLS admission port, plain admin port, certificate reload, shutdown.

mod limit;
pub mod listener;
pub mod router;
mod state;
pub mod tls;

pub use state::{
    Backend, DEFAULT_MIB_IN_FLIGHT, ImageInspection, Limits, SMALL_MIB_IN_FLIGHT, State,
};

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use zerodrop_core::policy::Mode;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("generating a self-signed certificate: {0}")]
    Certs(#[from] crate::certs::CertError),
    #[error("writing the CA bundle to {path}: {source}")]
    CaBundle {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files, polled for changes.
    Files {
        cert: PathBuf,
        key: PathBuf,
        reload_every: Duration,
    },
    /// An in-memory CA + certificate for localhost/127.0.0.1; the CA bundle is written out.
    SelfSigned { ca_bundle_out: PathBuf },
    /// Kept current by someone else (self-managed certificates in a cluster).
    Resolver(Arc<crate::certs::Resolver>),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub certs: CertSource,
    pub client_ca: Option<PathBuf>,
    pub unknown_namespace_mode: Mode,
    pub shutdown_delay: Duration,
    pub shutdown_timeout: Duration,
    pub connections: listener::Connections,
}

/// A server with its ports bound, ready to serve.
pub struct Server {
    pub tls_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    tls_listener: TcpListener,
    admin_listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
    config: Config,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

impl Server {
    pub async fn bind(config: Config, state: Arc<State>) -> Result<Server, ServerError> {
        let resolver = match &config.certs {
            CertSource::Files {
                cert,
                key,
                reload_every,
            } => {
                let read = |p: &PathBuf| {
                    std::fs::read(p).map_err(|source| tls::TlsError::Read {
                        path: p.clone(),
                        source,
                    })
                };
                let loaded = crate::certs::load_pair(&read(cert)?, &read(key)?)
                    .map_err(tls::TlsError::from)?;
                state.metrics.cert_expiry.set(loaded.not_after);
                let resolver = crate::certs::Resolver::new(loaded.key);
                tokio::spawn(tls::watch_files(
                    cert.clone(),
                    key.clone(),
                    *reload_every,
                    resolver.clone(),
                    state.metrics.clone(),
                ));
                resolver
            }
            CertSource::SelfSigned { ca_bundle_out } => {
                let ips = ["127.0.0.1".parse().ok(), "::1".parse().ok()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>();
                let bundle =
                    crate::certs::generate(&["localhost".into()], &ips, time::Duration::days(365))?;
                std::fs::write(ca_bundle_out, &bundle.ca_cert_pem).map_err(|source| {
                    ServerError::CaBundle {
                        path: ca_bundle_out.clone(),
                        source,
                    }
                })?;
                tracing::info!(ca_bundle = %ca_bundle_out.display(), "no --tls-cert given: serving a self-signed certificate for localhost, 127.0.0.1 and ::1");
                let loaded =
                    crate::certs::load_pair(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())
                        .map_err(tls::TlsError::from)?;
                state.metrics.cert_expiry.set(loaded.not_after);
                crate::certs::Resolver::new(loaded.key)
            }
            CertSource::Resolver(resolver) => resolver.clone(),
        };
        let tls_config = tls::server_config(resolver, config.client_ca.as_deref())?;
        let tls_listener = bind(config.listen).await?;
        let admin_listener = bind(config.admin_listen).await?;
        Ok(Server {
            tls_addr: tls_listener
                .local_addr()
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?,
            admin_addr: admin_listener
                .local_addr()
                .map_err(|source| ServerError::Bind {
                    addr: config.admin_listen,
                    source,
                })?,
            tls_listener,
            admin_listener,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls_config)),
            state,
            config,
        })
    }

    /// Serves until `shutdown` resolves, then: readiness fails at once, requests are still
    /// served for `shutdown_delay` (the apiserver keeps using open connections) and each answer
    /// closes its connection, listeners close, and connections get up to `shutdown_timeout` to
    /// end: by themselves for the first half, then closed once idle.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let admin_app = router::admin(self.state.clone());
        let mut admin_stop = stop_rx.clone();
        let admin = tokio::spawn(async move {
            let stopped = async move {
                let _ = admin_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(self.admin_listener, admin_app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %e, "admin server failed");
            }
        });
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut accept = Box::pin(listener::accept_loop(
            self.tls_listener,
            Some(self.acceptor),
            router::admission(self.state.clone()),
            &graceful,
            self.config.connections,
            self.state.metrics.overloaded.clone(),
            stop_rx,
        ));
        tokio::select! {
            () = &mut accept => {}
            () = shutdown => {}
        }
        self.state.begin_shutdown();
        tracing::info!(delay = ?self.config.shutdown_delay, "shutdown: readiness now failing, still serving");
        tokio::select! {
            () = &mut accept => {}
            () = tokio::time::sleep(self.config.shutdown_delay) => {}
        }
        let _ = stop_tx.send(true);
        (&mut accept).await;
        drop(accept);
        tracing::info!(
            connections = graceful.count(),
            "shutdown: listener closed, draining"
        );
        // First let connections end by themselves: each answer now closes its connection, and a
        // connection just opened is about to carry a request. Closing one ourselves races with a
        // request the client is sending on it (it fails; the apiserver then admits the pod
        // unprotected), so only those still idle after half the timeout are closed.
        let half = self.config.shutdown_timeout / 2;
        let _ = tokio::time::timeout(half, async {
            while graceful.count() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if graceful.count() > 0 {
            tracing::info!(
                connections = graceful.count(),
                "shutdown: closing the connections still idle"
            );
        }
        if tokio::time::timeout(half, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: drain timed out; closing remaining connections");
        }
        let _ = admin.await;
        tracing::info!("shutdown complete");
    }
}
