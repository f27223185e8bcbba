//! Flags of `zerodrop drain-wait`, the adaptive drain's waiter (a native sidecar of the pod).

use super::values::duration;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct DrainWaitArgs {
    /// Address for the preStop calls (the pod's own address: the hook has no `host`).
    #[arg(long, env = "ZERODROP_DRAIN_LISTEN", default_value = "0.0.0.0:9797")]
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
    /// How often the sockets are read.
    #[arg(long, env = "ZERODROP_DRAIN_EVERY", default_value = "100ms", value_parser = duration)]
    pub every: Duration,
}
