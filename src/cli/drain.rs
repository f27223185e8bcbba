//! Flags of `zerodrop drain-wait`, the adaptive drain's waiter (a native sidecar of the pod).

use super::values::duration;
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct DrainWaitArgs {
    /// Address for the preStop calls (the pod's own address: the hook has no `host`); `[::]`
    /// falls back to 0.0.0.0 where the pod has no IPv6.
    #[arg(long, env = "ZERODROP_DRAIN_LISTEN", default_value = "[::]:9797")]
    pub listen: SocketAddr,
    /// The app's ports (comma-separated); none: every port the pod listens on but this one.
    #[arg(long, env = "ZERODROP_DRAIN_PORTS", value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// A drain waits at least this long.
    #[arg(long, env = "ZERODROP_DRAIN_MIN", default_value = "1s", value_parser = duration)]
    pub min: Duration,
    /// It ends once nothing has arrived for this long.
    #[arg(long, env = "ZERODROP_DRAIN_QUIET", default_value = "2s", value_parser = duration)]
    pub quiet: Duration,
    /// It ends at this long whatever still arrives.
    #[arg(long, env = "ZERODROP_DRAIN_MAX", default_value = "30s", value_parser = duration)]
    pub max: Duration,
    /// What it waits when the pod's sockets cannot be read (the fixed preStop sleep).
    #[arg(long, env = "ZERODROP_DRAIN_FALLBACK", default_value = "5s", value_parser = duration)]
    pub fallback: Duration,
    /// What counts as work still arriving: new connections and requests on open ones, or new
    /// connections only (keep-alive clients pinned through kube-proxy do not hold the wait).
    #[arg(long, env = "ZERODROP_DRAIN_COUNT", value_enum, default_value_t = CountArg::Requests)]
    pub count: CountArg,
    /// How often the sockets are read.
    #[arg(long, env = "ZERODROP_DRAIN_EVERY", default_value = "100ms", value_parser = duration)]
    pub every: Duration,
    /// Instead of serving: wait at most this long for the waiter on `--listen`'s port to answer,
    /// then exit (1 if it never did). The sidecar's postStart hook, which holds the app back
    /// until the waiter serves.
    #[arg(long = "await", env = "ZERODROP_DRAIN_AWAIT", value_parser = duration)]
    pub await_serving: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CountArg {
    Requests,
    Connections,
}

impl From<CountArg> for zerodrop_core::drain::Count {
    fn from(c: CountArg) -> Self {
        match c {
            CountArg::Requests => zerodrop_core::drain::Count::Requests,
            CountArg::Connections => zerodrop_core::drain::Count::Connections,
        }
    }
}
