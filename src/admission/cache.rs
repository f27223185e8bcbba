//! Decision memo: during a rollout the pods of one ReplicaSet reach admission byte-identical
//! (only `generateName`, no name), so their answer is computed once. Keys hold the decoded
//! object's full bytes, so a hit is an exact match, never a hash guess.

use super::handler::{Endpoint, Verdict};
use super::review::Response;
use crate::engine::Workload;
use crate::findings::Code;
use crate::policy::{Layer, Mode};
use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    endpoint: Endpoint,
    /// A CronJob's template may equal a Deployment's; their answers differ.
    workload: Workload,
    namespace: String,
    /// The namespace layer (opt-in mode, annotations) as it was when the answer was computed.
    layer: u64,
    object: Vec<u8>,
}

impl Key {
    pub fn new(
        endpoint: Endpoint,
        workload: Workload,
        namespace: &str,
        layer: &Layer,
        object: &Value,
    ) -> Option<Key> {
        let mut h = DefaultHasher::new();
        layer.hash(&mut h);
        Some(Key {
            endpoint,
            workload,
            namespace: namespace.to_owned(),
            layer: h.finish(),
            object: serde_json::to_vec(object).ok()?,
        })
    }
}

/// Everything of an outcome that does not depend on the request's uid.
#[derive(Debug, Clone)]
pub struct Answer {
    pub response: Response,
    pub verdict: Verdict,
    pub mode: Option<Mode>,
    pub changes: Vec<&'static str>,
    pub findings: Vec<Code>,
}

/// Bounded, first-in first-out: rollouts are bursts of identical pods, not long-lived reuse.
pub struct DecisionCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Arc<Answer>>,
    order: VecDeque<Key>,
}

impl DecisionCache {
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache {
            capacity,
            inner: Mutex::new(Entries::default()),
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Answer>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.map.get(key).cloned()
    }

    pub fn put(&self, key: Key, answer: Answer) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Entries { map, order } = &mut *inner;
        if map.insert(key.clone(), Arc::new(answer)).is_none() {
            order.push_back(key);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key::new(
            Endpoint::Mutate,
            Workload::Pod,
            "ns",
            &Layer::default(),
            &serde_json::json!({ "n": n }),
        )
        .unwrap()
    }

    fn answer() -> Answer {
        Answer {
            response: Response::default(),
            verdict: Verdict::Unchanged,
            mode: None,
            changes: vec![],
            findings: vec![],
        }
    }

    #[test]
    fn bounded_first_in_first_out_and_zero_disables() {
        let cache = DecisionCache::new(2);
        for n in 0..3 {
            cache.put(key(n), answer());
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(0)).is_none() && cache.get(&key(2)).is_some());
        let off = DecisionCache::new(0);
        off.put(key(1), answer());
        assert!(off.is_empty());
    }
}
