//! What a verify run is asked (the workload, the load, the actions) and how it can fail:
//! the types its parts share.

use super::load::Method;
use super::preflight::{Refusal, Target, Wanted};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    ScaleDown,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::ScaleDown => "scale-down",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub namespace: String,
    pub wanted: Wanted,
    pub method: Method,
    pub rate: u32,
    pub keepalive: bool,
    pub connections: u16,
    pub timeout: Duration,
    pub actions: Vec<Action>,
    pub repeat: u32,
    pub image: Option<String>,
    pub zerodrop_namespace: String,
    /// Quiet time after convergence that still counts for the action.
    pub settle: Duration,
    /// Failure-free time required before the first action.
    pub steady: Duration,
    /// How long one rollout may take.
    pub rollout_limit: Duration,
    pub sweep: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Cannot(String),
    #[error("interrupted; what verify changed is put back and the workload has converged")]
    Interrupted,
    #[error("talking to the apiserver: {0}")]
    Kube(#[from] kube::Error),
}
