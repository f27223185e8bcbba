//! Command line: clap derive, every flag also from a `ZERODROP_*` environment variable.

use crate::engine::Capabilities;
use crate::policy::Mode;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod measure;
pub use measure::{LoadArgs, VerifyArgs, VerifyOutput};

#[derive(Debug, Parser)]
#[command(
    name = "zerodrop",
    version,
    about = "Admission webhook that makes Kubernetes rolling updates lossless"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(long, env = "ZERODROP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(
        long,
        env = "ZERODROP_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,
}

/// How to reach registries when images are inspected.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Docker config file with registry credentials (default: ~/.docker/config.json).
    #[arg(long, env = "ZERODROP_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// A registry (HOST:PORT) spoken to over plain HTTP; repeatable. Every other is HTTPS only.
    #[arg(long, env = "ZERODROP_INSECURE_REGISTRY", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// PEM CA bundle trusted for registries besides the system's; repeatable.
    #[arg(long, env = "ZERODROP_REGISTRY_CA", value_delimiter = ',')]
    pub registry_ca: Vec<PathBuf>,
    /// Bound of one registry call (manifest, config or layer).
    #[arg(long, env = "ZERODROP_IMAGE_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub image_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhook (TLS) and the admin port (health, readiness, metrics).
    Serve(Box<ServeArgs>),
    /// Show what zerodrop would change, over manifests (-f) or a live cluster (--cluster).
    /// Exit code: 0 nothing reaches --fail-on, 1 something does, 2 usage or input errors.
    Audit(AuditArgs),
    /// Development certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Steady HTTP/1.1 load to one target, retrying nothing; prints a JSON summary of every
    /// failure, classified and timed, when it stops (--duration, SIGTERM/SIGINT, or stdin
    /// closing with --until-stdin-closes). What rollouts are measured with.
    Load(LoadArgs),
    /// Roll a Deployment or StatefulSet under load from a pod in its namespace and report the
    /// requests that failed, when in the rollout, what the pods carried and what to change.
    /// Exit code: 0 nothing failed, 1 something did, 2 it could not run.
    Verify(Box<VerifyArgs>),
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a CA (ca.crt, ca.key) and a serving certificate it signed (tls.crt, tls.key).
    Generate(CertsArgs),
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Folder to write into (created if needed).
    #[arg(long, env = "ZERODROP_OUT")]
    pub out: PathBuf,
    /// DNS names of the serving certificate (repeatable).
    #[arg(
        long,
        env = "ZERODROP_DNS",
        value_delimiter = ',',
        required_unless_present = "ip"
    )]
    pub dns: Vec<String>,
    /// IP addresses of the serving certificate (repeatable).
    #[arg(long, env = "ZERODROP_IP", value_delimiter = ',')]
    pub ip: Vec<std::net::IpAddr>,
    /// Lifetime of the serving certificate.
    #[arg(long, env = "ZERODROP_VALIDITY", default_value = "8760h", value_parser = long_duration)]
    pub validity: Duration,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Manifest files or folders (recursive); `-` reads stdin (e.g. helm template ... | zerodrop audit -f -).
    #[arg(
        short = 'f',
        long = "filename",
        env = "ZERODROP_FILENAME",
        value_delimiter = ',',
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    pub filename: Vec<PathBuf>,
    /// Audit the live cluster instead of manifests.
    #[arg(long, env = "ZERODROP_CLUSTER")]
    pub cluster: bool,
    /// With --cluster: only this namespace.
    #[arg(short = 'n', long, env = "ZERODROP_NAMESPACE", requires = "cluster")]
    pub namespace: Option<String>,
    /// With --cluster: kubeconfig (default: in-cluster or $KUBECONFIG).
    #[arg(long, env = "ZERODROP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: write wgpolicyk8s.io PolicyReports, one per namespace.
    #[arg(long, env = "ZERODROP_POLICY_REPORT", requires = "cluster")]
    pub policy_report: bool,
    /// Report format.
    #[arg(short = 'o', long, env = "ZERODROP_OUTPUT", value_enum, default_value_t = crate::audit::output::Format::Table)]
    pub output: crate::audit::output::Format,
    /// Print the manifests with zerodrop's changes applied (same order, other documents untouched).
    #[arg(long, env = "ZERODROP_FIX", conflicts_with = "cluster")]
    pub fix: bool,
    /// Cluster policy defaults (YAML), as given to the webhook.
    #[arg(long, env = "ZERODROP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Simulate the namespace's opt-in label (offline audit).
    #[arg(
        long,
        env = "ZERODROP_NAMESPACE_MODE",
        value_parser = mode(),
        conflicts_with = "cluster"
    )]
    pub namespace_mode: Option<Mode>,
    /// Simulate a namespace annotation, KEY=VALUE (repeatable; offline audit).
    #[arg(long, env = "ZERODROP_NAMESPACE_ANNOTATION", value_delimiter = ',', value_parser = key_value, conflicts_with = "cluster")]
    pub namespace_annotation: Vec<(String, String)>,
    /// Kubernetes version to assume (default: the newest supported, or the cluster's).
    #[arg(long, env = "ZERODROP_KUBE_VERSION", value_parser = kube_version)]
    pub kube_version: Option<Capabilities>,
    /// What makes the exit code 1.
    #[arg(long, env = "ZERODROP_FAIL_ON", value_enum, default_value_t = crate::audit::FailOn::Change)]
    pub fail_on: crate::audit::FailOn,
    /// Inspect the images too: what their CMD, ENTRYPOINT, STOPSIGNAL and entrypoint scripts
    /// do to PID 1 (ZD303, ZD304, ZD305).
    #[arg(long, env = "ZERODROP_IMAGES")]
    pub images: bool,
    /// With --cluster --images: read each workload's image pull secrets (and ServiceAccount's)
    /// to inspect private images as its kubelet would.
    #[arg(long, env = "ZERODROP_IMAGE_PULL_SECRETS", requires = "images")]
    pub image_pull_secrets: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| "expected KEY=VALUE".into())
}

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
    /// Answers kept for byte-identical requests (a ReplicaSet's pods), within 8 MiB of
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
    /// Time a client has to send request headers (slowloris protection).
    #[arg(long, env = "ZERODROP_HEADER_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub header_timeout: Duration,
}

/// Modes as the policy spells them (the possible values listed in --help come from `Mode`).
fn mode() -> impl clap::builder::TypedValueParser<Value = Mode> {
    clap::builder::PossibleValuesParser::new(Mode::ALL.map(Mode::as_str))
        .try_map(|raw| raw.parse::<Mode>())
}

/// A Go duration (`500ms`, `10s`, `1m30s`, `8760h`: what Kubernetes flags take), parsed by
/// kube-core, within `max`; a bare number is seconds, as these flags always accepted.
fn go_duration(raw: &str, max: Duration) -> Result<Duration, String> {
    let value = match raw.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) if raw.is_empty() => return Err("expected a duration like 10s or 1m30s".into()),
        Err(_) => {
            let parsed: kube::core::Duration = raw.parse().map_err(|e| format!("{e}"))?;
            if parsed.is_negative() {
                return Err("expected a duration that is not negative".into());
            }
            parsed.into()
        }
    };
    if value > max {
        return Err(format!("expected at most {}h", max.as_secs() / 3600));
    }
    Ok(value)
}

pub(crate) fn duration(raw: &str) -> Result<Duration, String> {
    go_duration(raw, Duration::from_secs(86_400))
}

fn long_duration(raw: &str) -> Result<Duration, String> {
    const TEN_YEARS: u64 = 10 * 365 * 86_400;
    go_duration(raw, Duration::from_secs(TEN_YEARS)).and_then(|d| {
        if d.is_zero() {
            Err("expected a duration above zero".into())
        } else {
            Ok(d)
        }
    })
}

fn kube_version(raw: &str) -> Result<Capabilities, String> {
    Capabilities::parse(raw).ok_or_else(|| "expected a Kubernetes version like 1.34".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_go_durations_or_bare_seconds_within_bounds() {
        let ok = |raw: &str| duration(raw).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("5"), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in ["-1s", "25h", "10x", "s", ""] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            long_duration("8760h").unwrap(),
            Duration::from_secs(8760 * 3600)
        );
        assert!(long_duration("0s").is_err(), "a zero validity is refused");
        assert!(
            long_duration("100000h").is_err(),
            "over ten years is refused"
        );
    }

    #[test]
    fn modes_parse_as_the_policy_spells_them() {
        let cli = Cli::try_parse_from(["zerodrop", "serve", "--unknown-namespace-mode", "enforce"])
            .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(args.unknown_namespace_mode, Mode::Enforce);
        assert!(
            Cli::try_parse_from(["zerodrop", "serve", "--unknown-namespace-mode", "on"]).is_err()
        );
    }

    #[test]
    fn every_serve_flag_has_a_zerodrop_env_var() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        for arg in serve
            .get_arguments()
            .filter(|a| !a.is_positional() && a.get_long().is_some())
        {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let want = format!("ZERODROP_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(env.as_deref(), Some(want.as_str()), "--{long}");
        }
    }

    #[test]
    fn parses_typed_values() {
        let cli = Cli::try_parse_from([
            "zerodrop",
            "serve",
            "--kube-version",
            "1.29",
            "--shutdown-delay",
            "1m",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(args.kube_version, Some(Capabilities { minor: 29 }));
        assert_eq!(args.shutdown_delay, Duration::from_secs(60));
        assert!(Cli::try_parse_from(["zerodrop", "serve", "--kube-version", "banana"]).is_err());
        assert!(Cli::try_parse_from(["zerodrop", "serve", "--tls-cert", "c.pem"]).is_err());
    }
}
