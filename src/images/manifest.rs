//! The OCI and Docker wire formats the inspector reads: manifests, indexes, image configs.

use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
pub(super) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(super) media_type: String,
    pub(super) digest: String,
    #[serde(default)]
    pub(super) platform: Option<PlatformSpec>,
    #[serde(default)]
    pub(super) annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
pub(super) struct PlatformSpec {
    #[serde(default)]
    pub(super) os: String,
    #[serde(default)]
    pub(super) architecture: String,
}

#[derive(Deserialize)]
pub(super) struct Manifest {
    #[serde(rename = "mediaType", default)]
    pub(super) media_type: String,
    #[serde(default)]
    pub(super) manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub(super) config: Option<Descriptor>,
    #[serde(default)]
    pub(super) layers: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
pub(super) struct ConfigFile {
    #[serde(default)]
    pub(super) config: RunConfig,
}

#[derive(Deserialize, Default)]
pub(super) struct RunConfig {
    #[serde(rename = "Entrypoint", default)]
    pub(super) entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub(super) cmd: Option<Vec<String>>,
    #[serde(rename = "StopSignal", default)]
    pub(super) stop_signal: Option<String>,
    #[serde(rename = "Env", default)]
    pub(super) env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    pub(super) working_dir: Option<String>,
}

/// What a manifest or index says, as the inspector reads it (pure, for fuzzing).
#[derive(Debug, Default)]
pub struct ManifestSummary {
    pub config: Option<String>,
    pub layers: Vec<String>,
    /// An index's entries: (digest, os, architecture).
    pub entries: Vec<(String, String, String)>,
}

pub fn parse_manifest(bytes: &[u8]) -> Result<ManifestSummary, String> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let entries = m
        .manifests
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let (os, arch) = d
                .platform
                .map(|p| (p.os, p.architecture))
                .unwrap_or_default();
            (d.digest, os, arch)
        })
        .collect();
    Ok(ManifestSummary {
        config: m.config.map(|c| c.digest),
        layers: m.layers.into_iter().map(|l| l.digest).collect(),
        entries,
    })
}

/// An image config's Entrypoint and Cmd (pure, for fuzzing).
pub fn parse_config(bytes: &[u8]) -> Result<Vec<String>, String> {
    let file: ConfigFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let run = file.config;
    Ok(run
        .entrypoint
        .into_iter()
        .chain(run.cmd)
        .flatten()
        .collect())
}
