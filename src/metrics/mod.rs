//! Prometheus metrics, served as text on the admin port.

mod handles;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicI64;
use zerodrop_core::admission::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub operation: &'static str,
    pub result: &'static str,
}

/// Admission operations as static labels: no allocation per request, bounded cardinality.
fn operation_label(op: &str) -> &'static str {
    handles::OPERATIONS
        .iter()
        .find(|o| **o == op)
        .copied()
        .unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnprotectedLabels {
    pub namespace: String,
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub mutations: Family<KindLabels, Counter>,
    pub findings: Family<CodeLabels, Counter>,
    pub audit_would_mutate: Counter,
    pub duration: Family<EndpointLabels, Histogram>,
    pub cert_reloads: Family<ResultLabels, Counter>,
    pub cert_expiry: Gauge<i64, AtomicI64>,
    pub namespace_cache_ready: Gauge<i64, AtomicI64>,
    pub cluster_connected: Gauge<i64, AtomicI64>,
    pub overloaded: Counter,
    pub cache_hits: Counter,
    pub namespace_watch_errors: Counter,
    pub path_watch_errors: Counter,
    pub path_index_services: Gauge<i64, AtomicI64>,
    pub path_index_fronts: Gauge<i64, AtomicI64>,
    pub namespace_fetches: Family<ResultLabels, Counter>,
    pub unprotected_pods: Family<UnprotectedLabels, Gauge<i64, AtomicI64>>,
    pub scan_leader: Gauge<i64, AtomicI64>,
    pub scans: Family<ResultLabels, Counter>,
    pub scan_last_success: Gauge<i64, AtomicI64>,
    pub ready: Gauge<i64, AtomicI64>,
    pub image_lookups: Family<ResultLabels, Counter>,
    pub image_inspections: Family<ResultLabels, Counter>,
    pub image_inspection_duration: Histogram,
    handles: handles::Handles,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn latency_histogram() -> Histogram {
    // Sub-millisecond buckets: the engine's work is tens of microseconds.
    Histogram::new([
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0,
    ])
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("zerodrop");
        let requests = Family::default();
        let mutations = Family::default();
        let findings = Family::default();
        let audit_would_mutate = Counter::default();
        let duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let cert_reloads = Family::default();
        let cert_expiry = Gauge::default();
        let namespace_cache_ready = Gauge::default();
        let cluster_connected = Gauge::default();
        let overloaded = Counter::default();
        let cache_hits = Counter::default();
        let namespace_watch_errors = Counter::default();
        let path_watch_errors = Counter::default();
        let path_index_services = Gauge::default();
        let path_index_fronts = Gauge::default();
        let namespace_fetches = Family::default();
        let unprotected_pods = Family::default();
        let scan_leader = Gauge::default();
        let scans = Family::default();
        let scan_last_success = Gauge::default();
        let ready = Gauge::default();
        let image_lookups = Family::default();
        let image_inspections = Family::default();
        let image_inspection_duration =
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "admission_requests",
            "Admission requests by endpoint, operation and result",
            requests.clone(),
        );
        registry.register(
            "mutations",
            "Changes applied to pods, by kind",
            mutations.clone(),
        );
        registry.register("findings", "Findings reported, by code", findings.clone());
        registry.register(
            "audit_would_mutate",
            "Pods in audit mode that enforce mode would have changed",
            audit_would_mutate.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission request",
            duration.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads, by result",
            cert_reloads.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate (Unix time)",
            cert_expiry.clone(),
        );
        registry.register(
            "namespace_cache_ready",
            "1 when the namespace cache has synced",
            namespace_cache_ready.clone(),
        );
        registry.register(
            "cluster_connected",
            "1 while this replica has the cluster (apiserver reached, namespace watch running); 0 while it retries, after a watch failure, and in standalone runs",
            cluster_connected.clone(),
        );
        registry.register(
            "overloaded",
            "Requests refused with 503 (too many requests or bytes in flight, or no capacity to answer a late one) and connections closed for --max-connections",
            overloaded.clone(),
        );
        registry.register(
            "decision_cache_hits",
            "Admission answers served from the decision cache (identical pods of a rollout)",
            cache_hits.clone(),
        );
        registry.register(
            "namespace_watch_errors",
            "Failed namespace watch attempts; admission keeps using the last known namespaces",
            namespace_watch_errors.clone(),
        );
        registry.register(
            "path_watch_errors",
            "Failed watch attempts of the traffic path index (Services, Ingresses, routes); admission keeps using the last known paths",
            path_watch_errors.clone(),
        );
        registry.register(
            "path_index_services",
            "Services with a selector in the traffic path index",
            path_index_services.clone(),
        );
        registry.register(
            "path_index_fronts",
            "Ingresses and Gateway API routes in the traffic path index",
            path_index_fronts.clone(),
        );
        registry.register(
            "namespace_fetches",
            "Namespaces asked from the apiserver because the watch had not delivered them yet, by result",
            namespace_fetches.clone(),
        );
        registry.register(
            "unprotected_pods",
            "Running pods of enforce namespaces that enforce would still change, by namespace and cause (exported by the scan's Lease holder)",
            unprotected_pods.clone(),
        );
        registry.register(
            "scan_leader",
            "1 while this replica holds the scan's Lease",
            scan_leader.clone(),
        );
        registry.register("scans", "Background scans, by result", scans.clone());
        registry.register(
            "scan_last_success_timestamp_seconds",
            "When the last background scan completed (Unix time)",
            scan_last_success.clone(),
        );
        registry.register(
            "ready",
            "1 when this replica's /readyz answers ok (set at every scrape)",
            ready.clone(),
        );
        registry.register(
            "image_lookups",
            "Image facts asked by admissions: hit (known), miss (inspected in the background or within the budget)",
            image_lookups.clone(),
        );
        registry.register(
            "image_inspections",
            "Image inspections against registries, by result (known, unknown)",
            image_inspections.clone(),
        );
        registry.register(
            "image_inspection_duration_seconds",
            "Time to inspect an image (manifest, config, layers)",
            image_inspection_duration.clone(),
        );
        Metrics {
            registry,
            requests,
            mutations,
            findings,
            audit_would_mutate,
            duration,
            cert_reloads,
            cert_expiry,
            namespace_cache_ready,
            cluster_connected,
            overloaded,
            cache_hits,
            namespace_watch_errors,
            path_watch_errors,
            path_index_services,
            path_index_fronts,
            namespace_fetches,
            unprotected_pods,
            scan_leader,
            scans,
            scan_last_success,
            ready,
            image_lookups,
            image_inspections,
            image_inspection_duration,
            handles: handles::Handles::default(),
        }
        .with_known_series()
    }

    /// Series whose labels are known in advance exist from the start at 0, so alerts and
    /// dashboards see a zero instead of no data (and `rate` works from the first increment).
    fn with_known_series(self) -> Metrics {
        for endpoint in ["mutate", "validate"] {
            let _ = self.duration.get_or_create(&EndpointLabels { endpoint });
        }
        for kind in zerodrop_core::engine::Change::KINDS {
            let _ = self.mutations.get_or_create(&KindLabels { kind });
        }
        for code in zerodrop_core::findings::Code::ALL {
            let _ = self.findings.get_or_create(&CodeLabels {
                code: code.as_str(),
            });
        }
        for result in ["success", "failure"] {
            let _ = self.cert_reloads.get_or_create(&ResultLabels { result });
            let _ = self.scans.get_or_create(&ResultLabels { result });
        }
        for result in ["hit", "miss"] {
            let _ = self.image_lookups.get_or_create(&ResultLabels { result });
        }
        for result in ["known", "unknown"] {
            let _ = self
                .image_inspections
                .get_or_create(&ResultLabels { result });
        }
        for result in ["found", "absent", "failed"] {
            let _ = self
                .namespace_fetches
                .get_or_create(&ResultLabels { result });
        }
        self
    }

    pub fn record(&self, endpoint: &'static str, outcome: &Outcome, seconds: f64) {
        use zerodrop_core::admission::Verdict;
        let h = &self.handles;
        let operation = operation_label(&outcome.request.operation);
        h.request(&self.requests, endpoint, operation, outcome.answer.verdict)
            .inc();
        if outcome.answer.verdict == Verdict::Mutated {
            for kind in &outcome.answer.changes {
                h.mutation(&self.mutations, kind).inc();
            }
        }
        if outcome.cached {
            self.cache_hits.inc();
        }
        if outcome.answer.verdict == Verdict::WouldMutate {
            self.audit_would_mutate.inc();
        }
        for code in &outcome.answer.findings {
            h.finding(&self.findings, *code).inc();
        }
        h.duration(&self.duration, endpoint).observe(seconds);
    }

    pub fn record_fetch(&self, result: &'static str) {
        self.namespace_fetches
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn record_error(&self, endpoint: &'static str, result: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                operation: "",
                result,
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
