//! Decision memo: during a rollout the pods of one ReplicaSet reach admission byte-identical
//! (only `generateName`, no name), so their answer is computed once. Entries keep the decoded
//! object itself, so a hit is an exact match, never a hash guess.

use super::types::{Answer, Endpoint};
use crate::engine::image::Images;
use crate::engine::{Facts, Workload, patch, pod};
use crate::paths::Paths;
use crate::policy::Layer;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// What identifies a request's answer, borrowed from the request: looking up costs a hash of
/// the decoded object, no copy and no serialisation.
pub struct Key<'a> {
    pub endpoint: Endpoint,
    /// A CronJob's template may equal a Deployment's; their answers differ.
    pub workload: Workload,
    pub namespace: &'a str,
    /// The namespace layer (opt-in mode, annotations) the answer is computed with.
    pub layer: &'a Arc<Layer>,
    /// The admitted object (kept by the entry, shared, not copied) ...
    pub object: &'a Arc<Value>,
    /// ... and the pod (template) in it, which is what the answer depends on, with the facts
    /// known of its images and of what routes to it (`get`, `put`) ...
    pub template: &'a Value,
    /// ... which are the same as when an answer was stored while their sources' generations
    /// are (`current`).
    pub generations: Generations,
    /// Bytes of the request: a bound of what an entry keeps (the object is a projection of it).
    pub size: usize,
}

/// What the facts' sources (`ImageLookup`, `PathLookup`) said their state was when facts were
/// read from them: while both say the same, the facts read would be the same, so a stored
/// answer holds without reading them again (a rollout's pods cost no lookup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generations {
    pub images: u64,
    pub paths: u64,
}

struct Entry {
    endpoint: Endpoint,
    workload: Workload,
    namespace: String,
    layer: Arc<Layer>,
    object: Arc<Value>,
    images: Images,
    paths: Option<Paths>,
    /// When the facts above were last found current.
    generations: Generations,
    answer: Arc<Answer>,
    size: usize,
}

impl Entry {
    fn matches(&self, key: &Key<'_>) -> bool {
        self.endpoint == key.endpoint
            && self.workload == key.workload
            && self.namespace == key.namespace
            // Layers are shared per namespace version: pointer equality is the usual case.
            && (Arc::ptr_eq(&self.layer, key.layer) || *self.layer == **key.layer)
            && pod::at(&self.object, self.workload.template_path())
                .is_some_and(|template| patch::same(template, key.template))
    }

    fn same_facts(&self, facts: Facts<'_>) -> bool {
        self.images == *facts.images && self.paths.as_ref() == facts.paths
    }
}

/// What the entries may keep, in request bytes: 1,024 typical pods. Distinct large pods (a
/// tenant's 1 MiB objects) must not grow the webhook past its memory limit.
pub const DEFAULT_BUDGET: usize = 8 << 20;

/// A lookup that found nothing: the key's fingerprint, for storing its answer.
#[derive(Debug)]
pub struct Miss(u64);

/// Bounded in entries and in bytes, first-in first-out: rollouts are bursts of identical pods,
/// not long-lived reuse.
pub struct DecisionCache {
    capacity: usize,
    budget: usize,
    /// Seeded per process: cache keys come from pod specs, which tenants write.
    hasher: foldhash::fast::RandomState,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// By fingerprint; two requests sharing one (never seen in practice) only evict each other.
    map: HashMap<u64, Entry>,
    order: VecDeque<u64>,
    /// Sum of the entries' sizes.
    bytes: usize,
}

impl DecisionCache {
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache::with_budget(capacity, DEFAULT_BUDGET)
    }

    pub fn with_budget(capacity: usize, budget: usize) -> DecisionCache {
        DecisionCache {
            capacity,
            budget,
            hasher: foldhash::fast::RandomState::default(),
            inner: Mutex::new(Entries::default()),
        }
    }

    /// The slot: the object's identity, not its template (hashing that cost as much as
    /// comparing it, which `matches` does anyway), nor the facts (an answer is found before
    /// they are read, `current`). Pods of one ReplicaSet, Job or DaemonSet share their
    /// `generateName`; another template under the same name (facts changed, a workload
    /// edited) replaces the entry: the older answer is not asked for again.
    fn fingerprint(&self, key: &Key<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        key.endpoint.hash(&mut h);
        key.workload.hash(&mut h);
        key.namespace.hash(&mut h);
        identity(key.object).hash(&mut h);
        h.finish()
    }

    /// The answer stored for `key` while the facts' sources are in the generations it was
    /// stored (or last found current) in: no facts needed. Else the miss to `get` with them.
    pub fn current(&self, key: &Key<'_>) -> Result<Arc<Answer>, Miss> {
        let fingerprint = self.fingerprint(key);
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.map.get(&fingerprint) {
            Some(entry) if entry.generations == key.generations && entry.matches(key) => {
                Ok(entry.answer.clone())
            }
            _ => Err(Miss(fingerprint)),
        }
    }

    /// The answer stored for `key` computed with these `facts` (it becomes current in the
    /// key's generations), or the miss to `put` this key's answer with.
    pub fn get(
        &self,
        Miss(fingerprint): Miss,
        key: &Key<'_>,
        facts: Facts<'_>,
    ) -> Result<Arc<Answer>, Miss> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.map.get_mut(&fingerprint) {
            Some(entry) if entry.matches(key) && entry.same_facts(facts) => {
                entry.generations = key.generations;
                Ok(entry.answer.clone())
            }
            _ => Err(Miss(fingerprint)),
        }
    }

    /// Stores the answer for the key that `get` missed (its object is not hashed again).
    pub fn put(
        &self,
        Miss(fingerprint): Miss,
        key: &Key<'_>,
        facts: Facts<'_>,
        answer: Arc<Answer>,
    ) {
        if self.capacity == 0 || key.size > self.budget {
            return;
        }
        let entry = Entry {
            endpoint: key.endpoint,
            workload: key.workload,
            namespace: key.namespace.to_owned(),
            layer: key.layer.clone(),
            object: Arc::clone(key.object),
            images: facts.images.clone(),
            paths: facts.paths.cloned(),
            generations: key.generations,
            answer,
            size: key.size,
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Entries { map, order, bytes } = &mut *inner;
        *bytes += entry.size;
        match map.insert(fingerprint, entry) {
            Some(replaced) => *bytes -= replaced.size,
            None => order.push_back(fingerprint),
        }
        while order.len() > self.capacity || *bytes > self.budget {
            let Some(old) = order.pop_front() else { break };
            if let Some(gone) = map.remove(&old) {
                *bytes -= gone.size;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A pod's `generateName` (a controller's pods have no name yet at admission) or name; a
/// workload's name.
fn identity(object: &Value) -> &str {
    let meta = object.get("metadata");
    ["generateName", "name"]
        .into_iter()
        .find_map(|k| meta?.get(k)?.as_str().filter(|s| !s.is_empty()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::types::Verdict;
    use serde_json::json;

    /// What a request without image or path facts finds: the current answer, else by facts.
    fn find(cache: &DecisionCache, key: &Key<'_>) -> Result<Arc<Answer>, Miss> {
        cache
            .current(key)
            .or_else(|miss| cache.get(miss, key, Facts::default()))
    }

    fn store(cache: &DecisionCache, key: &Key<'_>, verdict: Verdict) {
        if let Err(miss) = find(cache, key) {
            cache.put(miss, key, Facts::default(), answer(verdict));
        }
    }

    fn answer(verdict: Verdict) -> Arc<Answer> {
        let response = crate::admission::review::Response::default();
        Arc::new(Answer {
            encoded: crate::admission::review::Encoded::of(&response),
            verdict,
            mode: None,
            changes: vec![],
            findings: vec![],
            image_misses: vec![],
            puller: None,
        })
    }

    fn key<'a>(layer: &'a Arc<Layer>, object: &'a Arc<Value>) -> Key<'a> {
        Key {
            endpoint: Endpoint::Mutate,
            workload: Workload::Pod,
            namespace: "ns",
            layer,
            object,
            template: object,
            generations: Generations::default(),
            size: 100,
        }
    }

    /// A pod of the `n`th ReplicaSet.
    fn pod(n: usize) -> Arc<Value> {
        Arc::new(json!({ "metadata": { "generateName": format!("web-{n}-") }, "n": n }))
    }

    #[test]
    fn bounded_first_in_first_out_and_zero_disables() {
        let layer = Arc::new(Layer::default());
        let objects: Vec<Arc<Value>> = (0..3).map(pod).collect();
        let cache = DecisionCache::new(2);
        for o in &objects {
            store(&cache, &key(&layer, o), Verdict::Unchanged);
        }
        assert_eq!(cache.len(), 2);
        assert!(find(&cache, &key(&layer, &objects[0])).is_err());
        assert!(find(&cache, &key(&layer, &objects[2])).is_ok());
        let off = DecisionCache::new(0);
        store(&off, &key(&layer, &objects[1]), Verdict::Unchanged);
        assert!(off.is_empty());
    }

    #[test]
    fn bounded_in_bytes_too() {
        let layer = Arc::new(Layer::default());
        let objects: Vec<Arc<Value>> = (0..4).map(pod).collect();
        // Room for 2 entries of 100 bytes although 16 are allowed.
        let cache = DecisionCache::with_budget(16, 250);
        for o in &objects {
            store(&cache, &key(&layer, o), Verdict::Unchanged);
        }
        assert_eq!(cache.len(), 2);
        assert!(find(&cache, &key(&layer, &objects[3])).is_ok());
        // A request bigger than the whole budget is answered but not kept.
        let big = Key {
            size: 251,
            ..key(&layer, &objects[0])
        };
        store(&cache, &big, Verdict::Unchanged);
        assert!(find(&cache, &big).is_err());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn hits_only_exact_matches() {
        let layer = Arc::new(Layer::default());
        let object =
            Arc::new(json!({ "spec": { "containers": [{ "name": "a", "ports": [1, 2] }] } }));
        let cache = DecisionCache::new(8);
        store(&cache, &key(&layer, &object), Verdict::Mutated);
        // An equal copy (another pod of the template) and an equal layer in another Arc hit.
        let copy = Arc::new((*object).clone());
        let same_layer = Arc::new(Layer::default());
        let hit = find(&cache, &key(&same_layer, &copy))
            .ok()
            .map(|a| a.verdict);
        assert_eq!(hit, Some(Verdict::Mutated));
        // Anything else misses: object, namespace, endpoint, workload, layer.
        let other =
            Arc::new(json!({ "spec": { "containers": [{ "name": "a", "ports": [1, 3] }] } }));
        assert!(find(&cache, &key(&layer, &other)).is_err());
        let audit = Arc::new(Layer::for_namespace(Some("audit"), []));
        assert!(find(&cache, &key(&audit, &object)).is_err());
        for k in [
            Key {
                namespace: "other",
                ..key(&layer, &object)
            },
            Key {
                endpoint: Endpoint::Validate,
                ..key(&layer, &object)
            },
            Key {
                workload: Workload::Deployment,
                ..key(&layer, &object)
            },
        ] {
            assert!(find(&cache, &k).is_err());
        }
    }

    #[test]
    fn another_template_under_one_name_replaces_it_and_never_hits_its_answer() {
        let layer = Arc::new(Layer::default());
        let [a, b] = [1, 2].map(|port| {
            Arc::new(json!({ "metadata": { "name": "web" }, "spec": { "containers": [{ "ports": [port] }] } }))
        });
        let cache = DecisionCache::new(8);
        store(&cache, &key(&layer, &a), Verdict::Mutated);
        assert!(find(&cache, &key(&layer, &b)).is_err());
        store(&cache, &key(&layer, &b), Verdict::Unchanged);
        assert_eq!(cache.len(), 1);
        assert!(find(&cache, &key(&layer, &a)).is_err());
        let hit = find(&cache, &key(&layer, &b)).ok().map(|a| a.verdict);
        assert_eq!(hit, Some(Verdict::Unchanged));
    }

    #[test]
    fn a_current_answer_needs_no_facts_and_changed_facts_miss() {
        use crate::paths::{PathClass, Paths, Route};
        let layer = Arc::new(Layer::default());
        let object = Arc::new(json!({ "spec": { "containers": [{ "name": "a" }] } }));
        let cache = DecisionCache::new(8);
        let routed = Paths {
            routes: vec![Route {
                class: PathClass::AwsNlb,
                why: "Service web is an AWS NLB target (ip)".into(),
            }],
            ..Paths::default()
        };
        let facts = Facts {
            paths: Some(&routed),
            ..Facts::default()
        };
        let at = |paths| Key {
            generations: Generations { images: 0, paths },
            ..key(&layer, &object)
        };
        let miss = cache.current(&at(1)).unwrap_err();
        let miss = cache.get(miss, &at(1), facts).unwrap_err();
        cache.put(miss, &at(1), facts, answer(Verdict::Mutated));
        // The same generations: found without facts.
        assert!(cache.current(&at(1)).is_ok());
        // The index changed: not current; the same facts still find it, and it is current
        // again in the new generation; other facts (the Service gone) miss.
        let miss = cache.current(&at(2)).unwrap_err();
        assert!(cache.get(miss, &at(2), facts).is_ok());
        assert!(cache.current(&at(2)).is_ok());
        let miss = cache.current(&at(3)).unwrap_err();
        assert!(cache.get(miss, &at(3), Facts::default()).is_err());
    }
}
