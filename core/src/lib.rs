//! zerodrop's pure core: policy -> decision -> JSON patch, and the AdmissionReview in and out
//! around it, with no I/O of any kind.

pub mod admission;
pub mod drain;
pub mod engine;
pub mod export;
pub mod findings;
pub mod paths;
pub mod policy;
