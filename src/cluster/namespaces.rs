//! Namespace cache: a metadata-only reflector whose labels and annotations form the
//! namespace policy layer.

use crate::metrics::Metrics;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zerodrop_core::admission::{Fetch, NamespaceLookup};
use zerodrop_core::policy::{Layer, MODE_LABEL};

/// A namespace's parsed layer, with the resourceVersion it was parsed from.
struct Parsed {
    version: Option<String>,
    layer: Arc<Layer>,
    /// When it was fetched on a miss: then it answers, until the watch has the namespace, for
    /// at most `FETCHED_FOR`.
    fetched: Option<Instant>,
}

impl Parsed {
    fn fetched_lately(&self) -> bool {
        self.fetched.is_some_and(|at| at.elapsed() < FETCHED_FOR)
    }
}

/// Long enough for any watch to catch up; short enough that a deleted namespace is forgotten.
const FETCHED_FOR: Duration = Duration::from_secs(60);
/// A namespace the apiserver said does not exist is not asked for again this long: requests
/// naming random namespaces cost at most one GET per name per interval.
const ABSENT_FOR: Duration = Duration::from_secs(10);
/// Names remembered as absent at most; beyond, expired ones go, then new ones are not kept.
const MAX_ABSENT: usize = 4096;

/// GETs under way (one per name, whoever asks) and names recently found absent.
#[derive(Default)]
struct Fetches {
    inflight: HashMap<String, Shared<BoxFuture<'static, Fetch>>>,
    absent: HashMap<String, Instant>,
}

impl Fetches {
    fn absent_lately(&self, name: &str) -> bool {
        self.absent
            .get(name)
            .is_some_and(|at| at.elapsed() < ABSENT_FOR)
    }

    fn remember_absent(&mut self, name: String) {
        if self.absent.len() >= MAX_ABSENT {
            self.absent.retain(|_, at| at.elapsed() < ABSENT_FOR);
        }
        if self.absent.len() < MAX_ABSENT {
            self.absent.insert(name, Instant::now());
        }
    }
}

#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    synced: Arc<AtomicBool>,
    /// By namespace name: parsing a namespace's annotations is done once per version (from the
    /// watch or a fetch), not once per admission.
    parsed: Arc<Mutex<HashMap<String, Parsed>>>,
    /// For `fetch` (metadata only); `None` in unit tests.
    api: Option<Api<Namespace>>,
    fetches: Arc<Mutex<Fetches>>,
    metrics: Arc<Metrics>,
}

impl NamespaceCache {
    /// Starts the watch in the background; `synced()` turns true after the first full list.
    pub fn start(client: Client, metrics: Arc<Metrics>) -> NamespaceCache {
        let (store, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        // Api<PartialObjectMeta<_>> asks for metadata only: labels and annotations are all we need.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        let watch_metrics = metrics.clone();
        tokio::spawn(async move {
            stream
                .for_each(|event| {
                    let metrics = watch_metrics.clone();
                    async move {
                        match event {
                            // The reflector keeps its last state; we keep answering from it.
                            Err(e) => {
                                metrics.namespace_watch_errors.inc();
                                metrics.cluster_connected.set(0);
                                tracing::warn!(error = %e, "namespace watch failed; retrying with backoff, answering from the last known namespaces");
                            }
                            Ok(_) => {
                                metrics.cluster_connected.set(1);
                            }
                        }
                    }
                })
                .await;
        });
        let ready_store = store.clone();
        let flag = synced.clone();
        let ready_metrics = metrics.clone();
        tokio::spawn(async move {
            if ready_store.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
                ready_metrics.namespace_cache_ready.set(1);
                tracing::info!(namespaces = ready_store.len(), "namespace cache synced");
            }
        });
        NamespaceCache::from_store(store, synced, Some(Api::all(client)), metrics)
    }

    /// A cache without a watch: it knows only the namespaces `fetch` asked for (what the
    /// watched cache does between a namespace's creation and the watch event).
    pub fn unwatched(client: Client, metrics: Arc<Metrics>) -> NamespaceCache {
        let (store, _) = reflector::store();
        NamespaceCache::from_store(store, Arc::default(), Some(Api::all(client)), metrics)
    }

    fn from_store(
        store: Store<PartialObjectMeta<Namespace>>,
        synced: Arc<AtomicBool>,
        api: Option<Api<Namespace>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        NamespaceCache {
            store,
            synced,
            parsed: Arc::default(),
            api,
            fetches: Arc::default(),
            metrics,
        }
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn remember(&self, name: &str, ns: &PartialObjectMeta<Namespace>) {
        let entry = Parsed {
            version: ns.metadata.resource_version.clone(),
            layer: Arc::new(parse(ns)),
            fetched: Some(Instant::now()),
        };
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        parsed.insert(name.to_owned(), entry);
    }
}

/// The policy layer of a namespace: its mode label and its annotations.
fn parse(ns: &PartialObjectMeta<Namespace>) -> Layer {
    let labels = ns.metadata.labels.as_ref();
    let mode = labels.and_then(|l| l.get(MODE_LABEL)).map(String::as_str);
    let annotations = ns
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    Layer::for_namespace(mode, annotations)
}

impl NamespaceLookup for NamespaceCache {
    fn layer(&self, namespace: &str) -> Option<Arc<Layer>> {
        let watched = self.store.get(&ObjectRef::new(namespace));
        // A poisoned lock only means another admission panicked mid-insert; the map is intact.
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        // The watch is the authority once it has the namespace; until then, what was fetched.
        let Some(ns) = watched else {
            return parsed
                .get(namespace)
                .filter(|p| p.fetched_lately())
                .map(|p| p.layer.clone());
        };
        let version = &ns.metadata.resource_version;
        if let Some(p) = parsed.get_mut(namespace)
            && p.version == *version
        {
            // Confirmed by the watch: no longer answered on the fetch's word if it goes away.
            p.fetched = None;
            return Some(p.layer.clone());
        }
        let layer = Arc::new(parse(&ns));
        // Deleted namespaces leave entries behind; drop them once they outnumber the live ones.
        if parsed.len() > 2 * self.store.len() + 64 {
            parsed.retain(|name, p| {
                p.fetched_lately() || self.store.get(&ObjectRef::new(name)).is_some()
            });
        }
        let entry = Parsed {
            version: version.clone(),
            layer: layer.clone(),
            fetched: None,
        };
        parsed.insert(namespace.to_owned(), entry);
        Some(layer)
    }

    /// One GET per name at a time, however many requests ask (they share it), and none for a
    /// name found absent in the last `ABSENT_FOR`. Each GET is counted in
    /// `namespace_fetches_total{result}`.
    fn fetch(&self, namespace: &str) -> BoxFuture<'static, Fetch> {
        let Some(api) = self.api.clone() else {
            return Box::pin(std::future::ready(Fetch::Unsupported));
        };
        let mut fetches = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
        if fetches.absent_lately(namespace) {
            return Box::pin(std::future::ready(Fetch::Absent));
        }
        if let Some(running) = fetches.inflight.get(namespace) {
            return Box::pin(running.clone());
        }
        let (cache, name) = (self.clone(), namespace.to_owned());
        // Spawned, so the GET completes (and leaves the table) even when every asker gave up.
        let get = tokio::spawn(async move {
            let fetched = match api.get_metadata_opt(&name).await {
                Ok(Some(ns)) => {
                    cache.remember(&name, &ns);
                    Fetch::Found
                }
                Ok(None) => Fetch::Absent,
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e, "could not fetch an unknown namespace");
                    Fetch::Failed
                }
            };
            cache.metrics.record_fetch(fetched.as_str());
            let mut fetches = cache.fetches.lock().unwrap_or_else(|p| p.into_inner());
            fetches.inflight.remove(&name);
            if fetched == Fetch::Absent {
                fetches.remember_absent(name);
            }
            fetched
        });
        let shared = get
            .map(|joined| joined.unwrap_or(Fetch::Failed))
            .boxed()
            .shared();
        fetches
            .inflight
            .insert(namespace.to_owned(), shared.clone());
        Box::pin(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector::store::Writer;
    use zerodrop_core::policy::Mode;

    fn namespace(version: &str, mode: &str) -> PartialObjectMeta<Namespace> {
        PartialObjectMeta {
            metadata: ObjectMeta {
                name: Some("shop".into()),
                resource_version: Some(version.into()),
                labels: Some([(MODE_LABEL.to_owned(), mode.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_layer_is_parsed_once_per_namespace_version() {
        let mut writer: Writer<PartialObjectMeta<Namespace>> = Writer::default();
        let cache =
            NamespaceCache::from_store(writer.as_reader(), Arc::default(), None, Arc::default());
        assert!(
            cache.layer("shop").is_none(),
            "unknown before the watch sees it"
        );

        writer.apply_watcher_event(&watcher::Event::Apply(namespace("1", "enforce")));
        let first = cache.layer("shop").expect("known");
        assert_eq!(first.all.mode, Some(Mode::Enforce));
        let again = cache.layer("shop").expect("known");
        assert!(
            Arc::ptr_eq(&first, &again),
            "same version: the parsed layer is reused"
        );

        writer.apply_watcher_event(&watcher::Event::Apply(namespace("2", "audit")));
        assert_eq!(
            cache.layer("shop").expect("known").all.mode,
            Some(Mode::Audit)
        );

        writer.apply_watcher_event(&watcher::Event::Delete(namespace("3", "audit")));
        assert!(
            cache.layer("shop").is_none(),
            "a deleted namespace is unknown again"
        );
    }

    #[test]
    fn a_fetched_namespace_answers_until_the_watch_has_it() {
        let mut writer: Writer<PartialObjectMeta<Namespace>> = Writer::default();
        let cache =
            NamespaceCache::from_store(writer.as_reader(), Arc::default(), None, Arc::default());
        cache.remember("shop", &namespace("1", "enforce"));
        let fetched = cache.layer("shop").expect("fetched");
        assert_eq!(fetched.all.mode, Some(Mode::Enforce));
        // Fetched entries expire: a namespace deleted meanwhile is not remembered forever.
        let expired = Instant::now()
            .checked_sub(FETCHED_FOR)
            .expect("uptime above a minute");
        cache
            .parsed
            .lock()
            .unwrap()
            .get_mut("shop")
            .unwrap()
            .fetched = Some(expired);
        assert!(cache.layer("shop").is_none());
        // The watch delivering the fetched version reuses its layer ...
        cache.remember("shop", &namespace("1", "enforce"));
        let fetched = cache.layer("shop").expect("fetched");
        writer.apply_watcher_event(&watcher::Event::Apply(namespace("1", "enforce")));
        assert!(Arc::ptr_eq(
            &fetched,
            &cache.layer("shop").expect("watched")
        ));
        // ... and is the authority from then on: deleted is unknown, at once.
        writer.apply_watcher_event(&watcher::Event::Delete(namespace("1", "enforce")));
        assert!(cache.layer("shop").is_none());
        writer.apply_watcher_event(&watcher::Event::Apply(namespace("2", "audit")));
        assert_eq!(
            cache.layer("shop").expect("watched").all.mode,
            Some(Mode::Audit)
        );
        writer.apply_watcher_event(&watcher::Event::Delete(namespace("3", "audit")));
        assert!(cache.layer("shop").is_none());
    }
}
