//! zerodrop: admission-time fixes that make Kubernetes rolling updates lossless.

// The pure core (policy, engine, findings, admission) is the crate zerodrop_core: every import
// names it, so the edge between the two is visible where it is crossed.

pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod drain;
pub mod images;
pub mod metrics;
pub mod scan;
pub mod server;
pub mod verify;
