//! Flags of the commands that measure rollouts: `zerodrop load` and `zerodrop verify`.

use super::values::duration;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// HOST:PORT to connect to (a Service's cluster IP, a pod, an ingress).
    #[arg(long, env = "ZERODROP_LOAD_TARGET")]
    pub target: String,
    #[arg(long, env = "ZERODROP_LOAD_PATH", default_value = "/")]
    pub path: String,
    /// The Host header (default: the target): an ingress routes by it.
    #[arg(long, env = "ZERODROP_LOAD_HOST")]
    pub host: Option<String>,
    #[arg(long, env = "ZERODROP_LOAD_METHOD", value_enum, default_value_t = crate::verify::load::Method::Get)]
    pub method: crate::verify::load::Method,
    /// Requests per second, on schedule whatever the answers (open loop).
    #[arg(long, env = "ZERODROP_LOAD_RATE", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Reuse connections (what real clients do); `false`: a new connection per request.
    #[arg(long, env = "ZERODROP_LOAD_KEEPALIVE", default_value_t = true, action = clap::ArgAction::Set)]
    pub keepalive: bool,
    /// Keep-alive connections kept open at most.
    #[arg(long, env = "ZERODROP_LOAD_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// Bound of one request (connect, send, whole answer).
    #[arg(long, env = "ZERODROP_LOAD_TIMEOUT", default_value = "2s", value_parser = duration)]
    pub timeout: Duration,
    /// Stop after this long.
    #[arg(long, env = "ZERODROP_LOAD_DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Also stop when stdin closes (a driver that dies never leaves load running).
    #[arg(long, env = "ZERODROP_LOAD_UNTIL_STDIN_CLOSES")]
    pub until_stdin_closes: bool,
    /// Also print a JSON progress line this often (counts, and the failures since the last).
    #[arg(long, env = "ZERODROP_LOAD_REPORT_EVERY", value_parser = duration)]
    pub report_every: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyAction {
    Restart,
    ScaleDown,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// deployment/NAME or statefulset/NAME.
    #[arg(env = "ZERODROP_VERIFY_TARGET", value_parser = |s: &str| s.parse::<crate::verify::preflight::Target>())]
    pub target: crate::verify::preflight::Target,
    #[arg(
        short = 'n',
        long,
        env = "ZERODROP_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Kubeconfig; without it in-cluster credentials or $KUBECONFIG are used.
    #[arg(long, env = "ZERODROP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Request path (default: the readiness probe's HTTP path, else /).
    #[arg(long, env = "ZERODROP_VERIFY_PATH")]
    pub path: Option<String>,
    /// Service port (default: the Service's only TCP port).
    #[arg(long, env = "ZERODROP_VERIFY_PORT")]
    pub port: Option<u16>,
    /// Service to send through (default: the one Service selecting the pods).
    #[arg(long, env = "ZERODROP_VERIFY_SERVICE")]
    pub service: Option<String>,
    /// Requests per second (open loop).
    #[arg(long, env = "ZERODROP_VERIFY_RATE", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=5_000))]
    pub rate: u32,
    #[arg(long, env = "ZERODROP_VERIFY_METHOD", value_enum, default_value_t = crate::verify::load::Method::Get)]
    pub method: crate::verify::load::Method,
    /// Reuse connections (what real clients do); `false`: a new connection per request.
    #[arg(long, env = "ZERODROP_VERIFY_KEEPALIVE", default_value_t = true, action = clap::ArgAction::Set)]
    pub keepalive: bool,
    /// Keep-alive connections kept open at most.
    #[arg(long, env = "ZERODROP_VERIFY_CONNECTIONS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub connections: u16,
    /// What to do to the workload, in order.
    #[arg(
        long,
        env = "ZERODROP_VERIFY_ACTIONS",
        value_enum,
        value_delimiter = ',',
        default_value = "restart"
    )]
    pub actions: Vec<VerifyAction>,
    /// Times to run the actions (default 1; 2 with --sweep-sleep, so one stray failure cannot
    /// pick the value alone).
    #[arg(long, env = "ZERODROP_VERIFY_REPEAT", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: Option<u32>,
    /// Bound of one request.
    #[arg(long, env = "ZERODROP_VERIFY_TIMEOUT", default_value = "2s", value_parser = duration)]
    pub timeout: Duration,
    #[arg(short = 'o', long, env = "ZERODROP_VERIFY_OUTPUT", value_enum, default_value_t = VerifyOutput::Table)]
    pub output: VerifyOutput,
    /// Image of the load pod (a zerodrop image; default: the one zerodrop runs with here).
    #[arg(long, env = "ZERODROP_VERIFY_IMAGE")]
    pub image: Option<String>,
    /// Where zerodrop runs (verify never rolls anything there, and takes its image from it).
    #[arg(
        long,
        env = "ZERODROP_VERIFY_ZERODROP_NAMESPACE",
        default_value = "zerodrop-system"
    )]
    pub zerodrop_namespace: String,
    /// Quiet time after a rollout converged that still counts for it.
    #[arg(long, env = "ZERODROP_VERIFY_SETTLE", default_value = "5s", value_parser = duration)]
    pub settle: Duration,
    /// Failure-free load required before the first action.
    #[arg(long, env = "ZERODROP_VERIFY_STEADY", default_value = "5s", value_parser = duration)]
    pub steady: Duration,
    /// How long one rollout may take before verify gives up (and puts things back).
    #[arg(long, env = "ZERODROP_VERIFY_ROLLOUT_TIMEOUT", default_value = "10m", value_parser = duration)]
    pub rollout_timeout: Duration,
    /// prestop-sleep values (seconds) to try in turn, e.g. 0,1,2,5,10: the smallest that loses
    /// nothing, plus a margin, is recommended; the template's annotations are restored after.
    #[arg(long, env = "ZERODROP_VERIFY_SWEEP_SLEEP", value_delimiter = ',', value_parser = clap::value_parser!(u64).range(0..=300))]
    pub sweep_sleep: Vec<u64>,
}

impl VerifyArgs {
    /// `--repeat`, or its default: 2 with a sweep (one stray failure cannot pick the value
    /// alone), else 1.
    pub fn repetitions(&self) -> u32 {
        self.repeat
            .unwrap_or(if self.sweep_sleep.is_empty() { 1 } else { 2 })
    }
}
