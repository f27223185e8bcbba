//! The inspector as the webhook's image source: known facts at once, inspections on demand.

use super::Inspector;
use crate::admission::ImageLookup;
use crate::engine::image::{ImageFacts, Platform};
use crate::metrics::{Metrics, ResultLabels};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Shared by every request; inspections run on it in the background.
pub struct Shared {
    pub inspector: Arc<Inspector>,
    pub metrics: Arc<Metrics>,
}

impl ImageLookup for Shared {
    fn cached(&self, image: &str, platform: &Platform) -> Option<ImageFacts> {
        let found = self.inspector.cached(image, platform);
        let result = if found.is_some() { "hit" } else { "miss" };
        self.metrics
            .image_lookups
            .get_or_create(&ResultLabels { result })
            .inc();
        found
    }

    fn inspect(&self, image: String, platform: Platform) -> BoxFuture<'static, ImageFacts> {
        let (inspector, metrics) = (self.inspector.clone(), self.metrics.clone());
        Box::pin(async move {
            let started = std::time::Instant::now();
            let facts = inspector.facts(&image, &platform).await;
            metrics
                .image_inspection_duration
                .observe(started.elapsed().as_secs_f64());
            let result = match &facts {
                ImageFacts::Known(_) => "known",
                ImageFacts::Unknown(why) => {
                    tracing::warn!(%image, reason = %why, "image not inspected");
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
