//! Reference -> manifest (or index, for the pod's platform) -> config blob -> what PID 1 is,
//! cached by reference with budgets: the I/O edge of the image facts the engine decides on.

use super::blobs::{Pull, sha256, verified};
use super::credentials::{Keyring, Login};
use super::files::Files;
pub use super::layers::LayerBudget;
use super::manifest::{ConfigFile, Descriptor, Manifest};
use super::reference::Reference;
use super::registry::{RegistryClient, RegistryError, manifest_accept};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zerodrop_core::engine::image::{ImageConfig, ImageFacts, Platform, Script, Shell};

const MAX_MANIFEST: usize = 4 << 20;
const MAX_CONFIG: usize = 1 << 20;
/// How long an answer is kept: a digest never changes; a tag may move; failures retry soon.
const PINNED_FOR: Duration = Duration::from_secs(3600);
const TAG_FOR: Duration = Duration::from_secs(60);
const FAILED_FOR: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 4096;

/// An image as asked for: its reference, the pod's platform, and the namespace whose pull
/// secrets read it (`None`: read anonymously or with the configured login, good for anyone).
type Key = (String, Platform, Option<String>);
/// An answer and how long it holds.
type Cache = HashMap<Key, (Instant, Duration, ImageFacts)>;

pub struct Inspector {
    client: Arc<RegistryClient>,
    cache: Mutex<Cache>,
    /// A lock per image being inspected (singleflight).
    inflight: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    budget: LayerBudget,
    /// Facts stored so far: what the cache answers changes only with it (or with time).
    stored: std::sync::atomic::AtomicU64,
}

/// What one platform's config and layers say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    stop_signal: Option<String>,
    shell: Shell,
    script: Option<(String, Script)>,
}

impl Inspector {
    pub fn new(client: Arc<RegistryClient>, budget: LayerBudget) -> Inspector {
        Inspector {
            client,
            cache: Mutex::default(),
            inflight: Mutex::default(),
            budget,
            stored: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many facts were stored: `cached` answers the same while it is unchanged (and no
    /// fact expired).
    pub fn stored(&self) -> u64 {
        self.stored.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The facts of `image` for `platform` read without pull secrets, if they are known and
    /// fresh: no waiting.
    pub fn cached(&self, image: &str, platform: &Platform) -> Option<ImageFacts> {
        self.cached_in(image, platform, None)
    }

    /// The same, as read with `namespace`'s pull secrets (`None`: without).
    pub fn cached_in(
        &self,
        image: &str,
        platform: &Platform,
        namespace: Option<&str>,
    ) -> Option<ImageFacts> {
        let key = (
            image.to_owned(),
            platform.clone(),
            namespace.map(str::to_owned),
        );
        self.lookup(&key)
    }

    fn lookup(&self, key: &Key) -> Option<ImageFacts> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, ttl, facts) = cache.get(key)?;
        (at.elapsed() < *ttl).then(|| facts.clone())
    }

    /// The facts of `image` for `platform`, from the cache or the registry, anonymously or
    /// with the configured login.
    pub async fn facts(&self, image: &str, platform: &Platform) -> ImageFacts {
        self.facts_for(image, platform, None).await
    }

    /// The same for a pod of `namespace` whose pull secrets hold `keyring`: when it has logins
    /// for the image's registry they are tried in order (as the kubelet does), and what they
    /// read is kept for that namespace alone.
    pub async fn facts_for(
        &self,
        image: &str,
        platform: &Platform,
        pod: Option<(&str, &Keyring)>,
    ) -> ImageFacts {
        let reference = match Reference::parse(image) {
            Ok(reference) => reference,
            Err(e) => {
                let key = (image.to_owned(), platform.clone(), None);
                let facts = ImageFacts::Unknown(e.to_string());
                self.store(key, PINNED_FOR, facts.clone());
                return facts;
            }
        };
        let pod_logins = pod.and_then(|(namespace, keyring)| {
            let logins = keyring.get(&reference.registry).filter(|l| !l.is_empty())?;
            Some((namespace.to_owned(), logins))
        });
        let (scope, logins): (Option<String>, Vec<Option<&Login>>) = match pod_logins {
            Some((namespace, logins)) => (Some(namespace), logins.iter().map(Some).collect()),
            None => (
                None,
                vec![self.client.configured_login(&reference.registry)],
            ),
        };
        let key = (image.to_owned(), platform.clone(), scope);
        if let Some(facts) = self.lookup(&key) {
            return facts;
        }
        // One inspection per image at a time: the others wait for it and read the cache.
        let turn = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            inflight.entry(key.clone()).or_default().clone()
        };
        let _turn = turn.lock().await;
        if let Some(facts) = self.lookup(&key) {
            return facts;
        }
        let facts = self.inspect_now(&reference, &key, &logins).await;
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        facts
    }

    async fn inspect_now(
        &self,
        reference: &Reference,
        key: &Key,
        logins: &[Option<&Login>],
    ) -> ImageFacts {
        let unauthorized = RegistryError::Unauthorized.to_string();
        let mut result = Err(unauthorized.clone());
        for login in logins {
            result = self.inspect((reference, *login), &key.1).await;
            // The next login may be the one this repository accepts.
            if result.as_ref().err() != Some(&unauthorized) {
                break;
            }
        }
        let (facts, ttl) = match result {
            Ok(config) if reference.pinned() => (ImageFacts::Known(config), PINNED_FOR),
            Ok(config) => (ImageFacts::Known(config), TAG_FOR),
            Err(reason) => (ImageFacts::Unknown(reason), FAILED_FOR),
        };
        self.store(key.clone(), ttl, facts.clone());
        facts
    }

    fn store(&self, key: Key, ttl: Duration, facts: ImageFacts) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (at, ttl, _)| at.elapsed() < *ttl);
        }
        if cache.len() < MAX_ENTRIES {
            cache.insert(key, (Instant::now(), ttl, facts));
        }
        self.stored
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    async fn inspect(&self, pull: Pull<'_>, platform: &Platform) -> Result<ImageConfig, String> {
        let (reference, login) = pull;
        let accept = manifest_accept();
        let accept = accept.to_str().unwrap_or_default();
        let (headers, body) = self
            .client
            .get(
                reference,
                login,
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
            Some(entries) => self.index(pull, &entries, platform).await?,
            None => (vec![self.run(pull, &manifest).await?], true),
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
            shell: run.shell,
            script: run.script,
            // Just resolved: a tag's digest is as fresh as it gets.
            certain: true,
        })
    }

    /// The platform's entry of an index, or every linux one (and whether they agree).
    async fn index(
        &self,
        pull: Pull<'_>,
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
            let body = verified(
                &self.client,
                pull,
                "manifests",
                &entry.digest,
                accept,
                MAX_MANIFEST,
            )
            .await?;
            let manifest: Manifest =
                serde_json::from_slice(&body).map_err(|e| format!("manifest: {e}"))?;
            runs.push(self.run(pull, &manifest).await?);
        }
        let agree = runs.windows(2).all(|w| w[0] == w[1]);
        Ok((runs, agree))
    }

    async fn run(&self, pull: Pull<'_>, manifest: &Manifest) -> Result<Run, String> {
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| format!("no config in a {} manifest", manifest.media_type))?;
        let body = verified(
            &self.client,
            pull,
            "blobs",
            &config.digest,
            "*/*",
            MAX_CONFIG,
        )
        .await?;
        let file: ConfigFile =
            serde_json::from_slice(&body).map_err(|e| format!("image config: {e}"))?;
        let run = file.config;
        let argv: Vec<String> = match (&run.entrypoint, &run.cmd) {
            (Some(e), _) if !e.is_empty() => e.clone(),
            (_, Some(c)) => c.clone(),
            _ => Vec::new(),
        };
        let layers =
            &manifest.layers[manifest.layers.len().saturating_sub(self.budget.max_layers)..];
        let files = Files {
            client: &self.client,
            budget: self.budget,
            pull,
            layers,
        };
        let shell = files.shell().await;
        let script = match zerodrop_core::engine::image::program(&argv) {
            Some(first) => {
                files
                    .script(
                        first,
                        run.env.as_deref().unwrap_or_default(),
                        run.working_dir.as_deref(),
                    )
                    .await?
            }
            None => None,
        };
        Ok(Run {
            entrypoint: run.entrypoint,
            cmd: run.cmd,
            stop_signal: run.stop_signal,
            shell,
            script,
        })
    }
}

fn describe(e: RegistryError) -> String {
    e.to_string()
}
