//! What every request shares: the deciding backend, the limits, image inspection, readiness.

use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use zerodrop_core::admission::cache::DecisionCache;
use zerodrop_core::admission::{ImageLookup, NamespaceLookup, PathLookup};
use zerodrop_core::engine::Engine;
use zerodrop_core::policy::Mode;

/// Protection against overload and slow clients: what a request may cost is bounded in
/// requests, in bytes and in threads, and held until its work has really ended.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Admission requests in flight (reading, evaluating or answering); beyond: 503 at once.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// KiB of request bodies in flight (each request reserves its Content-Length, or the
    /// largest body when it sends none); beyond: 503 at once. Bounds memory for any mix of
    /// sizes. Small bodies (every real pod) draw from their own share, so a flood of large
    /// ones cannot starve them.
    pub small_kib: Arc<tokio::sync::Semaphore>,
    pub large_kib: Arc<tokio::sync::Semaphore>,
    /// Large bodies evaluated at once, off the async workers: bounds the blocking threads.
    pub evaluations: Arc<tokio::sync::Semaphore>,
    /// Time a client has to send the request body once headers are in.
    pub body_timeout: Duration,
}

/// What the byte budget is by default: a handful of the largest requests, well inside the
/// chart's 128 MiB memory limit with the decoding they cost (docs/reliability.md).
pub const DEFAULT_MIB_IN_FLIGHT: u32 = 16;
/// The share of small bodies (up to `limit::BLOCKING_THRESHOLD`): 16 of the largest of them,
/// 500 typical pods.
pub const SMALL_MIB_IN_FLIGHT: u32 = 4;

impl Limits {
    pub fn new(max_in_flight: usize, body_timeout: Duration) -> Limits {
        Limits::with_bytes(max_in_flight, DEFAULT_MIB_IN_FLIGHT, body_timeout)
    }

    /// `mib_in_flight` is the whole byte budget, small share included.
    pub fn with_bytes(max_in_flight: usize, mib_in_flight: u32, body_timeout: Duration) -> Limits {
        // Evaluation is CPU-bound: more threads than cores only queue in the kernel instead.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            small_kib: Arc::new(Semaphore::new(SMALL_MIB_IN_FLIGHT as usize * 1024)),
            large_kib: Arc::new(Semaphore::new(
                mib_in_flight.saturating_sub(SMALL_MIB_IN_FLIGHT) as usize * 1024,
            )),
            evaluations: Arc::new(Semaphore::new(cores.max(2))),
            body_timeout,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(256, Duration::from_secs(10))
    }
}

/// What decides admissions: the engine (policy + the cluster's capabilities), the namespaces
/// and the answers already computed with them. Swapped as one unit when the cluster connection
/// arrives, so no answer computed with the provisional parts is ever reused after it.
pub struct Backend {
    pub engine: Engine,
    pub namespaces: Arc<dyn NamespaceLookup>,
    pub cache: DecisionCache,
    /// What routes to pods (None: no index; sleeps are `prestop-sleep`).
    pub paths: Option<Arc<dyn PathLookup>>,
    /// What has not had its first full view yet (`None`: everything has; always, for a
    /// fixed set).
    pub unsynced: Box<dyn Fn() -> Option<&'static str> + Send + Sync>,
}

impl Backend {
    /// A fixed set of namespaces (standalone runs, tests), synced from the start.
    pub fn fixed(engine: Engine, namespaces: Arc<dyn NamespaceLookup>, cache_size: usize) -> Self {
        Backend {
            engine,
            namespaces,
            cache: DecisionCache::new(cache_size),
            paths: None,
            unsynced: Box::new(|| None),
        }
    }
}

/// Shared by every request.
pub struct State {
    /// Answers until the cluster is connected; in a standalone run, always.
    pub fallback: Backend,
    /// Set once zerodrop has reached the apiserver, read its version and started the
    /// namespace watch.
    pub connected: OnceLock<Backend>,
    /// Credentials were found, so a cluster is expected: not ready until `connected`.
    pub expects_cluster: bool,
    pub unknown_namespace_mode: Mode,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub images: ImageInspection,
    shutting_down: AtomicBool,
}

/// Image inspection as the webhook uses it.
pub struct ImageInspection {
    /// None: inspection is off (`--images=false`).
    pub lookup: Option<Arc<dyn ImageLookup>>,
    /// How long /validate may wait for the images of a workload (all of them together).
    pub validate_budget: Duration,
    /// How long /mutate may wait (0: cached verdicts only; misses are inspected in the
    /// background for the pods that follow).
    pub mutate_budget: Duration,
    /// Background inspections at once.
    pub warming: Arc<Semaphore>,
}

impl ImageInspection {
    pub fn off() -> ImageInspection {
        ImageInspection {
            lookup: None,
            validate_budget: Duration::ZERO,
            mutate_budget: Duration::ZERO,
            warming: Arc::new(Semaphore::new(0)),
        }
    }
}

impl State {
    pub fn new(
        fallback: Backend,
        unknown_namespace_mode: Mode,
        metrics: Arc<Metrics>,
        limits: Limits,
    ) -> State {
        State {
            fallback,
            connected: OnceLock::new(),
            expects_cluster: false,
            unknown_namespace_mode,
            metrics,
            limits,
            images: ImageInspection::off(),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// From now on readiness fails ("shutting down"): the Service stops sending new requests.
    pub(super) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub(super) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// What decides now: the cluster's parts once connected, else the fallback.
    pub fn backend(&self) -> &Backend {
        self.connected.get().unwrap_or(&self.fallback)
    }

    /// `None` when ready. An apiserver outage after the connection does not count: every
    /// replica would leave at once; they keep answering from the last known namespaces.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.shutting_down() {
            return Some("shutting down");
        }
        if self.expects_cluster && self.connected.get().is_none() {
            return Some("not connected to the cluster yet (retrying; the log says why)");
        }
        if let Some(what) = (self.backend().unsynced)() {
            return Some(what);
        }
        // The ports open only with a certificate; one that has expired makes every call of
        // the apiserver fail, so say so rather than look healthy.
        let not_after = self.metrics.cert_expiry.get();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        (not_after != 0 && not_after <= now).then_some("serving certificate expired")
    }
}
