//! Reference -> manifest (or index, for the pod's platform) -> config blob -> what PID 1 is,
//! cached by reference with budgets: the I/O edge of the image facts the engine decides on.

use super::reference::Reference;
use super::registry::{RegistryClient, RegistryError, manifest_accept};
use crate::engine::image::{ImageConfig, ImageFacts, Shell};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_MANIFEST: usize = 4 << 20;
const MAX_CONFIG: usize = 1 << 20;
/// How long an answer is kept: a digest never changes; a tag may move; failures retry soon.
const PINNED_FOR: Duration = Duration::from_secs(3600);
const TAG_FOR: Duration = Duration::from_secs(60);
const FAILED_FOR: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 4096;

/// The platform to pick from an index (from the pod's node selector), or `None`: then every
/// linux platform must agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: Option<String>,
    pub arch: Option<String>,
}

/// An answer and how long it holds, by image reference and platform.
type Cache = HashMap<(String, Platform), (Instant, Duration, ImageFacts)>;

pub struct Inspector {
    client: Arc<RegistryClient>,
    cache: Mutex<Cache>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<PlatformSpec>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct PlatformSpec {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    config: RunConfig,
}

#[derive(Deserialize, Default)]
struct RunConfig {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "StopSignal", default)]
    stop_signal: Option<String>,
}

/// What one platform's config says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    stop_signal: Option<String>,
}

impl Inspector {
    pub fn new(client: Arc<RegistryClient>) -> Inspector {
        Inspector {
            client,
            cache: Mutex::default(),
        }
    }

    /// The facts of `image` for `platform`, from the cache or the registry.
    pub async fn facts(&self, image: &str, platform: &Platform) -> ImageFacts {
        let key = (image.to_owned(), platform.clone());
        if let Some((at, ttl, facts)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < *ttl
        {
            return facts.clone();
        }
        let (facts, ttl) = match Reference::parse(image) {
            Err(e) => (ImageFacts::Unknown(e.to_string()), PINNED_FOR),
            Ok(reference) => match self.inspect(&reference, platform).await {
                Ok(config) => {
                    let ttl = if reference.pinned() {
                        PINNED_FOR
                    } else {
                        TAG_FOR
                    };
                    (ImageFacts::Known(config), ttl)
                }
                Err(reason) => (ImageFacts::Unknown(reason), FAILED_FOR),
            },
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (at, ttl, _)| at.elapsed() < *ttl);
        }
        if cache.len() < MAX_ENTRIES {
            cache.insert(key, (Instant::now(), ttl, facts.clone()));
        }
        facts
    }

    async fn inspect(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ImageConfig, String> {
        let accept = manifest_accept();
        let accept = accept.to_str().unwrap_or_default();
        let (headers, body) = self
            .client
            .get(
                reference,
                "manifests",
                reference.manifest_ref(),
                accept,
                MAX_MANIFEST,
            )
            .await
            .map_err(describe)?;
        let digest = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| sha256(&body));
        if let Some(pinned) = &reference.digest
            && sha256(&body) != *pinned
        {
            return Err(format!("manifest does not match its digest {pinned}"));
        }
        let manifest: Manifest =
            serde_json::from_slice(&body).map_err(|e| format!("manifest: {e}"))?;
        let (runs, agree) = match manifest.manifests {
            Some(entries) => self.index(reference, &entries, platform).await?,
            None => (vec![self.run(reference, &manifest).await?], true),
        };
        let Some(run) = runs.first().cloned() else {
            return Err("no linux platform in the index".into());
        };
        if !agree {
            return Err(
                "the index's platforms disagree on the command; set the pod's kubernetes.io/arch"
                    .into(),
            );
        }
        Ok(ImageConfig {
            digest,
            entrypoint: run.entrypoint,
            cmd: run.cmd,
            stop_signal: run.stop_signal,
            // Which shell /bin/sh is needs the layers; until they are read it is unknown, so a
            // shell form is judged as if /bin/sh were dash (it may not exec a lone command).
            shell: Shell::Unknown,
            script: None,
            // Just resolved: a tag's digest is as fresh as it gets.
            certain: true,
        })
    }

    /// The platform's entry of an index, or every linux one (and whether they agree).
    async fn index(
        &self,
        reference: &Reference,
        entries: &[Descriptor],
        platform: &Platform,
    ) -> Result<(Vec<Run>, bool), String> {
        let images: Vec<&Descriptor> = entries
            .iter()
            .filter(|d| {
                d.annotations
                    .get("vnd.docker.reference.type")
                    .is_none_or(|t| t != "attestation-manifest")
            })
            .filter(|d| {
                d.platform.as_ref().is_some_and(|p| {
                    p.os == platform.os.as_deref().unwrap_or("linux") && p.architecture != "unknown"
                })
            })
            .filter(|d| {
                platform
                    .arch
                    .as_ref()
                    .is_none_or(|a| d.platform.as_ref().is_some_and(|p| p.architecture == *a))
            })
            .take(16)
            .collect();
        let mut runs = Vec::new();
        for entry in images {
            let accept = if entry.media_type.is_empty() {
                "application/vnd.oci.image.manifest.v1+json"
            } else {
                &entry.media_type
            };
            let (_, body) = self
                .client
                .get(reference, "manifests", &entry.digest, accept, MAX_MANIFEST)
                .await
                .map_err(describe)?;
            if sha256(&body) != entry.digest {
                return Err(format!(
                    "manifest {} does not match its digest",
                    entry.digest
                ));
            }
            let manifest: Manifest =
                serde_json::from_slice(&body).map_err(|e| format!("manifest: {e}"))?;
            runs.push(self.run(reference, &manifest).await?);
        }
        let agree = runs.windows(2).all(|w| w[0] == w[1]);
        Ok((runs, agree))
    }

    async fn run(&self, reference: &Reference, manifest: &Manifest) -> Result<Run, String> {
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| format!("no config in a {} manifest", manifest.media_type))?;
        let (_, body) = self
            .client
            .get(reference, "blobs", &config.digest, "*/*", MAX_CONFIG)
            .await
            .map_err(describe)?;
        if sha256(&body) != config.digest {
            return Err(format!(
                "config blob does not match its digest {}",
                config.digest
            ));
        }
        let file: ConfigFile =
            serde_json::from_slice(&body).map_err(|e| format!("image config: {e}"))?;
        Ok(Run {
            entrypoint: file.config.entrypoint,
            cmd: file.config.cmd,
            stop_signal: file.config.stop_signal,
        })
    }
}

fn describe(e: RegistryError) -> String {
    e.to_string()
}

fn sha256(bytes: &Bytes) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
