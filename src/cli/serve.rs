//! Flags of `zerodrop serve`: listeners, certificates, cluster, images, scan and bounds.

use super::registry::RegistryArgs;
use super::values::{duration, kube_version, long_duration, mode};
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use zerodrop_core::engine::Capabilities;
use zerodrop_core::policy::Mode;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the TLS admission endpoint.
    #[arg(long, env = "ZERODROP_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP admin endpoint (/healthz, /readyz, /metrics).
    #[arg(long, env = "ZERODROP_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Serving certificate (PEM); reloaded when the file changes. Without it a self-signed one is made.
    #[arg(long, env = "ZERODROP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "ZERODROP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate files are checked for changes.
    #[arg(long, env = "ZERODROP_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = duration)]
    pub tls_reload_interval: Duration,
    /// Where the CA bundle of the self-signed certificate is written.
    #[arg(long, env = "ZERODROP_CA_BUNDLE_OUT", default_value_os_t = std::env::temp_dir().join("zerodrop-ca.pem"))]
    pub ca_bundle_out: PathBuf,
    /// Require client certificates signed by this CA (the apiserver's client certificate).
    #[arg(long, env = "ZERODROP_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Cluster policy defaults (YAML); validated at start.
    #[arg(long, env = "ZERODROP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kubeconfig; without it in-cluster credentials or $KUBECONFIG are used.
    #[arg(long, env = "ZERODROP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Do not contact a cluster: serve with the configured defaults only.
    #[arg(long, env = "ZERODROP_STANDALONE")]
    pub standalone: bool,
    /// Kubernetes version to assume (e.g. 1.34), instead of asking the apiserver.
    #[arg(long, env = "ZERODROP_KUBE_VERSION", value_parser = kube_version)]
    pub kube_version: Option<Capabilities>,
    /// Mode for pods of a namespace the cache does not know yet.
    #[arg(long, env = "ZERODROP_UNKNOWN_NAMESPACE_MODE", value_parser = mode(), default_value = "audit")]
    pub unknown_namespace_mode: Mode,
    /// After SIGTERM, keep serving this long with readiness failing.
    #[arg(long, env = "ZERODROP_SHUTDOWN_DELAY", default_value = "5s", value_parser = duration)]
    pub shutdown_delay: Duration,
    /// Upper bound for in-flight requests to finish after the listener closes.
    #[arg(long, env = "ZERODROP_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub shutdown_timeout: Duration,
    /// Self-managed certificates: the TLS Secret every replica shares (needs a cluster).
    #[arg(long, env = "ZERODROP_SELF_MANAGED_SECRET", conflicts_with_all = ["tls_cert", "tls_key"], requires_all = ["self_managed_namespace", "self_managed_webhook", "self_managed_dns"])]
    pub self_managed_secret: Option<String>,
    /// Namespace of that Secret.
    #[arg(long, env = "ZERODROP_SELF_MANAGED_NAMESPACE")]
    pub self_managed_namespace: Option<String>,
    /// Name of our Mutating- and ValidatingWebhookConfiguration, whose caBundle zerodrop sets.
    #[arg(long, env = "ZERODROP_SELF_MANAGED_WEBHOOK")]
    pub self_managed_webhook: Option<String>,
    /// DNS names of the serving certificate (the Service's name.namespace.svc).
    #[arg(long, env = "ZERODROP_SELF_MANAGED_DNS", value_delimiter = ',')]
    pub self_managed_dns: Vec<String>,
    /// Lifetime of the serving certificate (the CA lives five times longer).
    #[arg(long, env = "ZERODROP_SELF_MANAGED_VALIDITY", default_value = "8760h", value_parser = long_duration)]
    pub self_managed_validity: Duration,
    /// Renew the serving certificate this long before it expires.
    #[arg(long, env = "ZERODROP_SELF_MANAGED_RENEW_BEFORE", default_value = "720h", value_parser = long_duration)]
    pub self_managed_renew_before: Duration,
    /// How often every replica re-reads the Secret (renewals by others, expiry).
    #[arg(long, env = "ZERODROP_SELF_MANAGED_CHECK_INTERVAL", default_value = "1m", value_parser = duration)]
    pub self_managed_check_interval: Duration,
    /// Know what routes to each pod (watch Services, Ingresses, Gateway API routes; needs list
    /// and watch on them): the sleep becomes the slowest path class's. `false`: every pod gets
    /// `prestop-sleep`, as without the index.
    #[arg(long, env = "ZERODROP_TRAFFIC_PATHS", default_value_t = true, action = clap::ArgAction::Set)]
    pub traffic_paths: bool,
    /// Inspect images (CMD, ENTRYPOINT, STOPSIGNAL, entrypoint scripts) to judge PID 1;
    /// `false` turns every registry call off (air-gapped clusters).
    #[arg(long, env = "ZERODROP_IMAGE_INSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub image_inspection: bool,
    /// How long /validate may wait for a workload's images (all together); what arrives later
    /// is cached for the pods that follow.
    #[arg(long, env = "ZERODROP_IMAGE_VALIDATE_BUDGET", default_value = "1s", value_parser = duration)]
    pub image_validate_budget: Duration,
    /// How long /mutate may wait for a pod's images; 0: cached verdicts only (misses are
    /// inspected in the background).
    #[arg(long, env = "ZERODROP_IMAGE_MUTATE_BUDGET", default_value = "0s", value_parser = duration)]
    pub image_mutate_budget: Duration,
    /// Read the pods' image pull secrets (and their ServiceAccounts') to inspect private
    /// images; needs `get` on secrets and serviceaccounts. Off: only images that need no secret
    /// of the pod's (public, or a --registry-config login) are inspected.
    #[arg(long, env = "ZERODROP_IMAGE_PULL_SECRETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub image_pull_secrets: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// What mutates pods: `webhook` (the apiserver calls this server) or `policy` (the exported
    /// MutatingAdmissionPolicy, `zerodrop policy export`): the scan then judges pods by what the
    /// policy gives and reports those it declines (`declined-by-policy`).
    #[arg(long, env = "ZERODROP_ADMISSION", value_enum, default_value_t = Admission::Webhook)]
    pub admission: Admission,
    /// How often the Lease holder scans every opted-in namespace for pods enforce would still
    /// change (zerodrop_unprotected_pods, PolicyReports); 0 turns the scan off.
    #[arg(long, env = "ZERODROP_SCAN_INTERVAL", default_value = "5m", value_parser = duration)]
    pub scan_interval: Duration,
    /// Namespace of the scan's Lease (default: the client's namespace: the pod's own in a cluster).
    #[arg(long, env = "ZERODROP_SCAN_LEASE_NAMESPACE")]
    pub scan_lease_namespace: Option<String>,
    /// Name of the scan's Lease.
    #[arg(
        long,
        env = "ZERODROP_SCAN_LEASE_NAME",
        default_value = "zerodrop-scan"
    )]
    pub scan_lease_name: String,
    /// How long the holder keeps the Lease unrenewed: the scan moves within this when it is lost.
    #[arg(long, env = "ZERODROP_SCAN_LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub scan_lease_duration: Duration,
    /// Scan only the opted-in namespaces this label selector also matches (default: all).
    #[arg(long, env = "ZERODROP_SCAN_NAMESPACE_SELECTOR")]
    pub scan_namespace_selector: Option<String>,
    /// This replica's identity for the Lease (default: host name and process id; the pod name
    /// in a cluster).
    #[arg(long, env = "ZERODROP_SCAN_IDENTITY")]
    pub scan_identity: Option<String>,
    /// Answers kept for requests with the same pod (a ReplicaSet's pods), within 8 MiB of
    /// requests; 0 disables.
    #[arg(long, env = "ZERODROP_DECISION_CACHE_SIZE", default_value_t = 1024)]
    pub decision_cache_size: usize,
    /// Admission requests in flight at once; more are refused with 503 at once.
    #[arg(long, env = "ZERODROP_MAX_CONCURRENT_REQUESTS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,
    /// MiB of request bodies in flight; beyond that 503 at once (bounds memory for any mix of
    /// sizes). 4 MiB of it are kept for bodies up to 256 KiB (every real pod), the rest must
    /// hold the largest body (8 MiB): at least 12.
    #[arg(long, env = "ZERODROP_MAX_IN_FLIGHT_MIB", default_value_t = crate::server::DEFAULT_MIB_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(12..=4096))]
    pub max_in_flight_mib: u32,
    /// Time a client has to send the request body (slow clients).
    #[arg(long, env = "ZERODROP_BODY_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub body_timeout: Duration,
    /// Time a client has to send a request's headers, from their first byte (slowloris
    /// protection).
    #[arg(long, env = "ZERODROP_HEADER_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this long. Above the apiserver's own
    /// (90 s), so it closes first: closing an idle connection races with a request sent on it.
    #[arg(long, env = "ZERODROP_IDLE_TIMEOUT", default_value = "120s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Open admission connections at most; beyond, new ones are closed at once.
    #[arg(long, env = "ZERODROP_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Admission {
    Webhook,
    Policy,
}
