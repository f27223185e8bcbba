//! Namespace cache: a metadata-only reflector whose labels and annotations form the
//! namespace policy layer.

use crate::admission::NamespaceLookup;
use crate::policy::{Layer, MODE_LABEL};
use crate::server::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    synced: Arc<AtomicBool>,
}

impl NamespaceCache {
    /// Starts the watch in the background; `synced()` turns true after the first full list.
    pub fn start(client: Client, metrics: Arc<Metrics>) -> NamespaceCache {
        let (store, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        // Api<PartialObjectMeta<_>> asks for metadata only: labels and annotations are all we need.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        let watch_metrics = metrics.clone();
        tokio::spawn(async move {
            stream
                .for_each(|event| {
                    let errors = watch_metrics.namespace_watch_errors.clone();
                    async move {
                    if let Err(e) = event {
                        errors.inc();
                        // The reflector keeps its last state; we keep answering from it.
                        tracing::warn!(error = %e, "namespace watch failed; retrying with backoff");
                    }
                    }
                })
                .await;
        });
        let ready_store = store.clone();
        let flag = synced.clone();
        tokio::spawn(async move {
            if ready_store.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
                metrics.namespace_cache_ready.set(1);
                tracing::info!(namespaces = ready_store.len(), "namespace cache synced");
            }
        });
        NamespaceCache { store, synced }
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

impl NamespaceLookup for NamespaceCache {
    fn layer(&self, namespace: &str) -> Option<Layer> {
        let ns = self.store.get(&ObjectRef::new(namespace))?;
        let labels = ns.metadata.labels.as_ref();
        let mode = labels.and_then(|l| l.get(MODE_LABEL)).map(String::as_str);
        let annotations = ns
            .metadata
            .annotations
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        Some(Layer::for_namespace(mode, annotations))
    }
}
