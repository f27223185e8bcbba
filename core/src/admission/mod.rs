//! Admission: AdmissionReview in, the engine's decision out as an AdmissionReview response.

pub mod cache;
pub mod handler;
pub mod projection;
pub mod response;
pub mod review;
pub mod types;

pub use handler::{Context, handle};
pub use review::DecodeError;
pub use types::{
    Endpoint, Fetch, ImageLookup, NamespaceLookup, Outcome, PathLookup, Puller, Verdict,
};
