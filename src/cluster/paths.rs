//! The traffic path index from watches: Services, Ingresses and the Gateway API routes whose
//! CRDs exist, kept in memory (paths::PathIndex) so admission never asks the apiserver.

use crate::metrics::Metrics;
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use zerodrop_core::admission::PathLookup;
use zerodrop_core::paths::classify::{self, GATEWAY_GROUP, ROUTE_KINDS};
use zerodrop_core::paths::{PathIndex, Paths};

/// How often the Gateway API group is looked for again (its CRDs may come after zerodrop).
const DISCOVER_EVERY: Duration = Duration::from_secs(120);

/// The kinds of object the index watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Service,
    Ingress,
    Route(&'static str),
}

impl Watched {
    fn name(self) -> &'static str {
        match self {
            Watched::Service => "Service",
            Watched::Ingress => "Ingress",
            Watched::Route(kind) => kind,
        }
    }
}

/// One object as the index keeps it.
enum Entry {
    Service(classify::ServiceFacts),
    Front(classify::Front),
}

#[derive(Clone)]
pub struct PathCache {
    index: Arc<RwLock<PathIndex>>,
    /// Watches that have not delivered their first full list yet.
    pending: Arc<AtomicUsize>,
    /// Route kinds already watched.
    routes: Arc<Mutex<BTreeSet<&'static str>>>,
    metrics: Arc<Metrics>,
}

impl PathCache {
    /// Starts the Service and Ingress watches, and the routes' once their CRDs are found;
    /// `synced()` turns true when every watch started at the first discovery has listed.
    pub async fn start(client: Client, metrics: Arc<Metrics>) -> PathCache {
        let cache = PathCache {
            index: Arc::default(),
            pending: Arc::new(AtomicUsize::new(0)),
            routes: Arc::default(),
            metrics,
        };
        use k8s_openapi::api::{core::v1::Service, networking::v1::Ingress};
        cache.watch(
            &client,
            ApiResource::erase::<Service>(&()),
            Watched::Service,
            true,
        );
        cache.watch(
            &client,
            ApiResource::erase::<Ingress>(&()),
            Watched::Ingress,
            true,
        );
        cache.discover(&client, true).await;
        let (again, client) = (cache.clone(), client.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(DISCOVER_EVERY).await;
                // A kind found later does not hold readiness: every replica would leave at once
                // (its watch failing says so in the metric and at WARN instead).
                again.discover(&client, false).await;
            }
        });
        cache
    }

    pub fn synced(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Starts a watch for each route kind the Gateway API group serves that is not watched yet.
    async fn discover(&self, client: &Client, gates_readiness: bool) {
        let group = match kube::discovery::group(client, GATEWAY_GROUP).await {
            Ok(group) => group,
            Err(e) => {
                tracing::debug!(error = %e, "no Gateway API group: routes are not indexed");
                return;
            }
        };
        for (resource, _) in group.recommended_resources() {
            let Some(kind) = ROUTE_KINDS.iter().find(|k| **k == resource.kind) else {
                continue;
            };
            let new = self
                .routes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(kind);
            if new {
                tracing::info!(kind, version = %resource.version, "indexing Gateway API routes");
                self.watch(client, resource, Watched::Route(kind), gates_readiness);
            }
        }
    }

    fn watch(
        &self,
        client: &Client,
        resource: ApiResource,
        watched: Watched,
        gates_readiness: bool,
    ) {
        if gates_readiness {
            self.pending.fetch_add(1, Ordering::AcqRel);
        }
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let cache = self.clone();
        tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            let (mut listed, mut first) = (Vec::new(), gates_readiness);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::Init) => listed.clear(),
                    Ok(Event::InitApply(obj)) => listed.extend(read(watched, &obj)),
                    Ok(Event::InitDone) => {
                        cache.replace(watched, std::mem::take(&mut listed));
                        if std::mem::take(&mut first) {
                            cache.pending.fetch_sub(1, Ordering::AcqRel);
                        }
                        tracing::info!(kind = watched.name(), "path index listed");
                    }
                    Ok(Event::Apply(obj)) => cache.apply(watched, &obj),
                    Ok(Event::Delete(obj)) => cache.delete(watched, &obj),
                    Err(e) => {
                        cache.metrics.path_watch_errors.inc();
                        tracing::warn!(kind = watched.name(), error = %e, "path watch failed; retrying with backoff, answering from the last known paths");
                    }
                }
            }
        });
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, PathIndex> {
        // A poisoned lock only means a writer panicked between two whole updates.
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn replace(&self, watched: Watched, listed: Vec<Entry>) {
        let mut index = self.write();
        match watched {
            Watched::Service => index.replace_services(
                listed
                    .into_iter()
                    .filter_map(|e| match e {
                        Entry::Service(s) => Some(s),
                        Entry::Front(_) => None,
                    })
                    .collect(),
            ),
            _ => index.replace_fronts(
                watched.name(),
                listed
                    .into_iter()
                    .filter_map(|e| match e {
                        Entry::Front(f) => Some(f),
                        Entry::Service(_) => None,
                    })
                    .collect(),
            ),
        }
        self.gauges(&index);
    }

    fn apply(&self, watched: Watched, obj: &DynamicObject) {
        let (namespace, name) = names(obj);
        let entry = read(watched, obj);
        let mut index = self.write();
        match (watched, entry) {
            (Watched::Service, Some(Entry::Service(facts))) => {
                index.put_service(&namespace, &name, Some(facts))
            }
            (Watched::Service, _) => index.put_service(&namespace, &name, None),
            (_, Some(Entry::Front(front))) => index.put_front(front),
            (_, _) => index.remove_front(&namespace, watched.name(), &name),
        }
        self.gauges(&index);
    }

    fn delete(&self, watched: Watched, obj: &DynamicObject) {
        let (namespace, name) = names(obj);
        let mut index = self.write();
        match watched {
            Watched::Service => index.remove_service(&namespace, &name),
            _ => index.remove_front(&namespace, watched.name(), &name),
        }
        self.gauges(&index);
    }

    fn gauges(&self, index: &PathIndex) {
        let services = i64::try_from(index.services()).unwrap_or(i64::MAX);
        let fronts = i64::try_from(index.fronts()).unwrap_or(i64::MAX);
        self.metrics.path_index_services.set(services);
        self.metrics.path_index_fronts.set(fronts);
    }
}

fn names(obj: &DynamicObject) -> (String, String) {
    (
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

/// What the index keeps of one object (`None`: nothing, e.g. a Service without a selector).
fn read(watched: Watched, obj: &DynamicObject) -> Option<Entry> {
    let value = serde_json::to_value(obj).ok()?;
    match watched {
        Watched::Service => classify::service(&value).map(Entry::Service),
        Watched::Ingress => classify::ingress(&value).map(Entry::Front),
        Watched::Route(kind) => classify::route(kind, &value).map(Entry::Front),
    }
}

impl PathLookup for PathCache {
    fn paths(&self, namespace: &str, labels: Option<&Map<String, Value>>) -> Paths {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index.lookup(namespace, labels)
    }

    fn generation(&self) -> u64 {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .version()
    }
}
