//! The inspector as the webhook's image source: known facts at once, inspections on demand,
//! with the pod's pull secrets when zerodrop may read them.

use super::credentials::PullCredentials;
use super::inspect::Inspector;
use crate::metrics::{Metrics, ResultLabels};
use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use zerodrop_core::admission::{ImageLookup, Puller};
use zerodrop_core::engine::image::{ImageFacts, Platform};

/// Shared by every request; inspections run on it in the background.
pub struct Shared {
    inspector: Arc<Inspector>,
    metrics: Arc<Metrics>,
    /// The pods' pull secrets (`None`: only what needs no secret of theirs is inspected).
    pull: Option<Arc<dyn PullCredentials>>,
    /// `zerodrop_image_lookups_total` hit and miss, resolved once: every lookup counts one per
    /// image (a decision-cache answer still current needs none).
    hits: Counter,
    misses: Counter,
    /// Since when the generation's time part counts.
    started: std::time::Instant,
}

/// Facts expire by time too: answers found current are looked up again at least this often.
const RECHECK_SECS: u64 = 10;

impl Shared {
    pub fn new(
        inspector: Arc<Inspector>,
        metrics: Arc<Metrics>,
        pull: Option<Arc<dyn PullCredentials>>,
    ) -> Shared {
        let counter = |result| {
            metrics
                .image_lookups
                .get_or_create(&ResultLabels { result })
                .clone()
        };
        let (hits, misses) = (counter("hit"), counter("miss"));
        Shared {
            inspector,
            metrics,
            pull,
            hits,
            misses,
            started: std::time::Instant::now(),
        }
    }

    /// What the cache knows for a pod of `namespace`: what its pull secrets read, else what
    /// anyone may read. A failure read without secrets is not final when the pod may have
    /// some: asking again resolves them (cached, no registry call when they do not apply).
    fn known(&self, image: &str, platform: &Platform, namespace: &str) -> Option<ImageFacts> {
        if self.pull.is_some()
            && let Some(facts) = self.inspector.cached_in(image, platform, Some(namespace))
        {
            return Some(facts);
        }
        match self.inspector.cached(image, platform)? {
            ImageFacts::Unknown(_) if self.pull.is_some() => None,
            facts => Some(facts),
        }
    }
}

impl ImageLookup for Shared {
    fn cached(&self, image: &str, platform: &Platform, namespace: &str) -> Option<ImageFacts> {
        let found = self.known(image, platform, namespace);
        match found {
            Some(_) => self.hits.inc(),
            None => self.misses.inc(),
        };
        found
    }

    fn generation(&self) -> u64 {
        let epoch = self.started.elapsed().as_secs() / RECHECK_SECS;
        (epoch << 40) ^ self.inspector.stored()
    }

    fn inspect(
        &self,
        image: String,
        platform: Platform,
        puller: Arc<Puller>,
    ) -> BoxFuture<'static, ImageFacts> {
        let (inspector, metrics) = (self.inspector.clone(), self.metrics.clone());
        let keyring = self.pull.as_ref().map(|p| p.keyring(puller.clone()));
        Box::pin(async move {
            let started = std::time::Instant::now();
            let keyring = match keyring {
                Some(keyring) => Some(keyring.await),
                None => None,
            };
            let pod = keyring.as_deref().map(|k| (puller.namespace.as_str(), k));
            let facts = inspector.facts_for(&image, &platform, pod).await;
            metrics
                .image_inspection_duration
                .observe(started.elapsed().as_secs_f64());
            let result = match &facts {
                ImageFacts::Known(_) => "known",
                ImageFacts::Unknown(why) => {
                    tracing::warn!(%image, namespace = %puller.namespace, reason = %why, "image not inspected");
                    "unknown"
                }
            };
            metrics
                .image_inspections
                .get_or_create(&ResultLabels { result })
                .inc();
            facts
        })
    }
}
