//! The drain waiter's HTTP side: the kubelet's preStop call waits here until new work has
//! stopped arriving at the pod (zerodrop_core::drain decides), or for the fixed sleep when the
//! pod's sockets cannot be read.

use super::sockets::{self, View};
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use zerodrop_core::drain::{Bounds, Count, Ending, Wait};
use zerodrop_core::engine::waiter::READY_PATH;

/// Waits at once: one per container's preStop is the real need; a tenant calling the port
/// cannot pile up more.
pub const MAX_WAITS: usize = 16;
/// The kubelet's lifecycle hook calls carry `kube-lifecycle/<version>`.
const KUBELET_AGENT: &str = "kube-lifecycle/";

#[derive(Debug, Clone)]
pub struct Config {
    pub bounds: Bounds,
    pub count: Count,
    /// The app's ports; empty: every port the pod listens on but the waiter's own.
    pub ports: Vec<u16>,
    /// The waiter's own port, never the app's traffic.
    pub own_port: u16,
    /// What a drain waits when the sockets cannot be read: today's fixed sleep.
    pub fallback: Duration,
    /// How often the sockets are read.
    pub every: Duration,
}

struct Shared {
    config: Config,
    waits: Arc<Semaphore>,
}

pub fn router(config: Config) -> Router {
    let shared = Arc::new(Shared {
        config,
        waits: Arc::new(Semaphore::new(MAX_WAITS)),
    });
    Router::new()
        .route("/drain", get(drain))
        .route(READY_PATH, get(|| async { "ok\n" }))
        .with_state(shared)
}

async fn drain(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !agent.starts_with(KUBELET_AGENT) {
        return (
            StatusCode::FORBIDDEN,
            "only the kubelet's preStop hook drains\n",
        )
            .into_response();
    }
    let Ok(_slot) = shared.waits.clone().try_acquire_owned() else {
        return (StatusCode::TOO_MANY_REQUESTS, "too many drains at once\n").into_response();
    };
    // On a dual-stack listener an IPv4 kubelet is ::ffff:a.b.c.d; its probes to the app are not.
    let outcome = wait(&shared.config, peer.ip().to_canonical()).await;
    outcome.log();
    (StatusCode::OK, outcome.summary()).into_response()
}

/// How a drain ended and what it saw: its log line and its answer.
pub struct Outcome {
    pub waited: Duration,
    /// `quiet`, `max` or `fallback`.
    pub ending: &'static str,
    pub new_connections: u32,
    pub busy_connections: u32,
    pub last_arrival: Option<Duration>,
    pub kubelet: IpAddr,
    /// Why it fell back to the fixed sleep.
    pub error: Option<String>,
}

impl Outcome {
    fn log(&self) {
        let waited_ms = self.waited.as_millis() as u64;
        let last_arrival_ms = self.last_arrival.map(|d| d.as_millis() as u64);
        // tracing's level must be known where the event is written: one body, two levels.
        macro_rules! measured {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    waited_ms,
                    ending = self.ending,
                    new_connections = self.new_connections,
                    busy_connections = self.busy_connections,
                    last_arrival_ms,
                    kubelet = %self.kubelet,
                    "drain"
                )
            };
        }
        match &self.error {
            // The pod got the fixed sleep, not the adaptive wait: someone should know.
            Some(error) => tracing::warn!(
                waited_ms,
                ending = self.ending,
                kubelet = %self.kubelet,
                error = %error,
                "drain"
            ),
            // Work still arrived when the maximum ended the wait: SIGTERM met it (a client
            // pinned through the VIP under `requests`, or a balancer slower than `drain-max`).
            None if self.ending == "max" => measured!(tracing::Level::WARN),
            None => measured!(tracing::Level::INFO),
        }
    }

    pub fn summary(&self) -> String {
        let mut text = serde_json::json!({
            "waited_ms": self.waited.as_millis() as u64,
            "ending": self.ending,
            "new_connections": self.new_connections,
            "busy_connections": self.busy_connections,
        })
        .to_string();
        text.push('\n');
        text
    }
}

/// One drain: snapshots every `every` until the decision ends it; the fixed sleep if the
/// sockets cannot be read at the start or on the way (never less than it would have waited).
pub async fn wait(config: &Config, kubelet: IpAddr) -> Outcome {
    let started = Instant::now();
    let fallback = |error: String| async move {
        tokio::time::sleep(config.fallback.saturating_sub(started.elapsed())).await;
        Outcome {
            waited: started.elapsed(),
            ending: "fallback",
            new_connections: 0,
            busy_connections: 0,
            last_arrival: None,
            kubelet,
            error: Some(error),
        }
    };
    let first = match look().await {
        Ok(first) => first,
        Err(e) => return fallback(e).await,
    };
    let ports = if config.ports.is_empty() {
        first
            .listening
            .iter()
            .copied()
            .filter(|p| *p != config.own_port)
            .collect()
    } else {
        config.ports.clone()
    };
    let mut decision = Wait::new(
        config.bounds,
        ports,
        Some(kubelet),
        &first.accepted,
        first.passive_opens,
    )
    .counting(config.count);
    loop {
        tokio::time::sleep(config.every).await;
        let view = match look().await {
            Ok(view) => view,
            Err(e) => return fallback(e).await,
        };
        let at = started.elapsed();
        if let Some(v) = decision.observe(at, &view.accepted, view.passive_opens) {
            return Outcome {
                waited: v.waited,
                ending: match v.ending {
                    Ending::Quiet => "quiet",
                    Ending::Max => "max",
                },
                new_connections: v.new_connections,
                busy_connections: v.busy_connections,
                last_arrival: v.last_arrival,
                kubelet,
                error: None,
            };
        }
    }
}

/// A snapshot off the async workers (netlink calls block).
async fn look() -> Result<View, String> {
    match tokio::task::spawn_blocking(sockets::view).await {
        Ok(Ok(view)) => Ok(view),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
