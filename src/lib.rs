//! zerodrop: admission-time fixes that make Kubernetes rolling updates lossless.

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod engine;
pub mod findings;
pub mod policy;
pub mod server;
