//! Policy: the settings, their defaults, and how the layers combine into effective settings.

pub mod config;
pub mod duration;
pub mod layer;
pub mod settings;

pub use config::{ClusterPolicy, ConfigError, DrainWaiter};
pub use layer::{Layer, Source};
pub use settings::*;
