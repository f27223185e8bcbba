//! Command line: clap derive, every flag also from a `ZERODROP_*` environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
use zerodrop_core::engine::Capabilities;
use zerodrop_core::policy::Mode;

mod drain;
pub mod measure;
mod policy;
mod registry;
mod serve;
mod values;
pub use drain::DrainWaitArgs;
pub use measure::{LoadArgs, VerifyArgs, VerifyOutput};
pub use policy::{PolicyCommand, PolicyExportArgs};
pub use registry::RegistryArgs;
pub use serve::{Admission, ServeArgs};
use values::{key_value, kube_version, long_duration, mode};

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
    /// The adaptive drain's waiter, run by zerodrop as a native sidecar: answers the app's
    /// preStop call (GET /drain) once new work has stopped arriving at the pod.
    DrainWait(DrainWaitArgs),
    /// The policy without a webhook.
    #[command(subcommand)]
    Policy(PolicyCommand),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
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
    fn every_flag_of_every_command_has_a_zerodrop_env_var() {
        fn check(cmd: &clap::Command, path: &str) -> usize {
            let mut flags = 0;
            for arg in cmd.get_arguments().filter(|a| a.get_long().is_some()) {
                let long = arg.get_long().unwrap_or_default();
                if matches!(long, "help" | "version") {
                    continue;
                }
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                assert!(
                    env.as_deref().is_some_and(|e| e.starts_with("ZERODROP_")),
                    "{path} --{long}: {env:?}"
                );
                flags += 1;
            }
            flags
                + cmd
                    .get_subcommands()
                    .map(|sub| check(sub, &format!("{path} {}", sub.get_name())))
                    .sum::<usize>()
        }
        assert!(
            check(&Cli::command(), "zerodrop") > 60,
            "the walk found the flags"
        );
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
