//! Helpers the integration tests share: built tools, Helm, load, generated pods, the router.

pub mod built;
pub mod helm;
pub mod load;
pub mod named_metrics;
pub mod pods;
pub mod process;
pub mod registry;
pub mod router;
pub mod serve;
pub mod strict_json;
