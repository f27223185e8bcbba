//! zerodrop's pure core: policy -> decision -> JSON patch, with no I/O of any kind.

pub mod engine;
pub mod findings;
pub mod policy;
