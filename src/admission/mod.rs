//! Admission: AdmissionReview in, the engine's decision out as an AdmissionReview response.

pub mod cache;
pub mod handler;
pub mod projection;
pub mod response;
pub mod review;

pub use handler::{Context, Endpoint, Fetch, NamespaceLookup, Outcome, Verdict, handle};
pub use review::DecodeError;
