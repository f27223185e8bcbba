//! Flags for reaching registries, shared by `serve` and `audit --images`.

use super::values::duration;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach registries when images are inspected.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Docker config file with registry credentials (default: ~/.docker/config.json).
    #[arg(long, env = "ZERODROP_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// A registry (HOST:PORT) spoken to over plain HTTP; repeatable. Every other is HTTPS only.
    #[arg(long, env = "ZERODROP_INSECURE_REGISTRY", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// PEM CA bundle trusted for registries besides the system's; repeatable.
    #[arg(long, env = "ZERODROP_REGISTRY_CA", value_delimiter = ',')]
    pub registry_ca: Vec<PathBuf>,
    /// Bound of one registry call (manifest, config or layer).
    #[arg(long, env = "ZERODROP_IMAGE_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub image_timeout: Duration,
}
