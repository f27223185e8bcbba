//! zerodrop: admission-time fixes that make Kubernetes rolling updates lossless.

pub mod engine;
pub mod findings;
pub mod policy;
