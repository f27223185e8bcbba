//! zerodrop: admission-time fixes that make Kubernetes rolling updates lossless.

// The pure core lives in its own crate (no I/O dependencies); re-exported so every shell and
// test names it as before.
pub use zerodrop_core::{engine, findings, policy};

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod images;
pub mod metrics;
pub mod scan;
pub mod server;
pub mod verify;
