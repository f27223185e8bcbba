//! Image inspection: what an image's config says PID 1 is, read from its registry with
//! budgets and a cache. I/O here; the verdicts are the engine's (engine::image).

mod blobs;
pub mod credentials;
mod files;
pub mod inspect;
pub mod layers;
pub mod lookup;
pub mod manifest;
pub mod reference;
pub mod registry;
mod resolve;

pub use inspect::Inspector;
pub use zerodrop_core::engine::image::Platform;
