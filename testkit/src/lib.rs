//! What zerodrop's tests, benchmarks, fuzz targets and test programs share: generated pods, a
//! strict JSON parser, the tools the tests build (Helm, a registry, the control plane) and the
//! cluster helpers; the programs themselves are this crate's binaries (src/bin).

// Helpers outside #[test] functions panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod paths;
pub mod pods;
pub mod strict_json;

#[cfg(feature = "shell")]
pub mod burst;
#[cfg(feature = "shell")]
pub mod cluster;
#[cfg(feature = "shell")]
pub mod export;
#[cfg(feature = "shell")]
pub mod fuzz_checks;
#[cfg(feature = "shell")]
pub mod helm;
#[cfg(feature = "shell")]
pub mod kyverno;
#[cfg(feature = "shell")]
pub mod paths_apiserver;
#[cfg(feature = "shell")]
pub mod process;
#[cfg(feature = "shell")]
pub mod registry;
#[cfg(feature = "shell")]
pub mod reviews;
#[cfg(feature = "shell")]
pub mod router;
#[cfg(feature = "shell")]
pub mod tools;

/// The repository's root (fixtures, charts, the tool build scripts are found from it).
pub fn root() -> &'static std::path::Path {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here)
}

/// The YAML documents of a stream (`---`-separated), empty ones dropped; panics on a document
/// that is not YAML (a test's own input or a tool's output).
#[cfg(feature = "shell")]
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}
