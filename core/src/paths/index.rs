//! The index of what routes to pods: Services by selector, and the Ingresses and routes in
//! front of them. Kept by the server from watches and by the offline audit from manifests; a
//! lookup costs the pod's labels and the Services that share one of them, never a scan.

use super::classify::{self, Front, ServiceFacts};
use super::route::{Paths, Route};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A lookup checks at most this many candidate Services (one label shared by thousands of
/// Services in one namespace); past it the answer says it is partial.
pub const MAX_CANDIDATES: usize = 1024;
/// At most this many ignored-annotation problems are carried to the pod's findings.
pub const MAX_PROBLEMS: usize = 4;

type Name = (String, String);
/// Keys are names tenants write; foldhash is seeded per map (as the decision cache's).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
pub struct PathIndex {
    /// namespace -> name -> the Service (nested, so a lookup borrows its keys).
    services: Map<String, Map<String, ServiceFacts>>,
    /// namespace -> selector key -> value -> Services indexed under that pair (each Service is
    /// under its selector's first pair only, so a candidate is met once).
    by_pair: Map<String, Map<String, Map<String, Vec<String>>>>,
    /// `namespace/Kind/name` -> the front.
    fronts: Map<String, Front>,
    /// A Service -> the keys of the fronts that send to it.
    fronted: Map<Name, BTreeSet<String>>,
    /// Bumped by every change: what a lookup answered holds while it stays.
    version: u64,
}

impl PathIndex {
    pub fn new() -> PathIndex {
        PathIndex::default()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn services(&self) -> usize {
        self.services.values().map(Map::len).sum()
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&ServiceFacts> {
        self.services.get(namespace)?.get(name)
    }

    pub fn fronts(&self) -> usize {
        self.fronts.len()
    }

    /// Adds or replaces a Service; `None` facts (it selects nothing now) remove it.
    pub fn put_service(&mut self, namespace: &str, name: &str, facts: Option<ServiceFacts>) {
        self.version += 1;
        self.remove_service(namespace, name);
        let Some(facts) = facts else { return };
        if let Some((k, v)) = facts.selector.first() {
            self.by_pair
                .entry(facts.namespace.clone())
                .or_default()
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .push(facts.name.clone());
        }
        self.services
            .entry(facts.namespace.clone())
            .or_default()
            .insert(facts.name.clone(), facts);
    }

    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        self.version += 1;
        let Some(names) = self.services.get_mut(namespace) else {
            return;
        };
        let Some(old) = names.remove(name) else {
            return;
        };
        if names.is_empty() {
            self.services.remove(namespace);
        }
        let Some((k, v)) = old.selector.first() else {
            return;
        };
        if let Some(keys) = self.by_pair.get_mut(namespace) {
            if let Some(values) = keys.get_mut(k) {
                if let Some(names) = values.get_mut(v) {
                    names.retain(|n| n != name);
                    if names.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    keys.remove(k);
                }
            }
            if keys.is_empty() {
                self.by_pair.remove(namespace);
            }
        }
    }

    /// Adds or replaces a front (`kind` as in its id, `Ingress` or a route kind).
    pub fn put_front(&mut self, front: Front) {
        self.version += 1;
        let key = format!("{}/{}", front.namespace, front.id);
        self.remove_front_key(&key);
        for target in &front.targets {
            self.fronted
                .entry(target.clone())
                .or_default()
                .insert(key.clone());
        }
        self.fronts.insert(key, front);
    }

    pub fn remove_front(&mut self, namespace: &str, kind: &str, name: &str) {
        self.remove_front_key(&format!("{namespace}/{kind}/{name}"));
    }

    fn remove_front_key(&mut self, key: &str) {
        self.version += 1;
        let Some(old) = self.fronts.remove(key) else {
            return;
        };
        for target in &old.targets {
            if let Some(keys) = self.fronted.get_mut(target) {
                keys.remove(key);
                if keys.is_empty() {
                    self.fronted.remove(target);
                }
            }
        }
    }

    /// Adds a Service, Ingress or Gateway API route read from a manifest or a list; `false`
    /// when the object is none of those.
    pub fn add_object(&mut self, obj: &Value) -> bool {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let group = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g);
        match (group, kind) {
            ("", "Service") => {
                if let Some(facts) = classify::service(obj) {
                    let (ns, name) = (facts.namespace.clone(), facts.name.clone());
                    self.put_service(&ns, &name, Some(facts));
                }
            }
            ("networking.k8s.io", "Ingress") => {
                if let Some(front) = classify::ingress(obj) {
                    self.put_front(front);
                }
            }
            (classify::GATEWAY_GROUP, k) if classify::ROUTE_KINDS.contains(&k) => {
                if let Some(front) = classify::route(k, obj) {
                    self.put_front(front);
                }
            }
            _ => return false,
        }
        true
    }

    /// Replaces every Service (a relist).
    pub fn replace_services(&mut self, all: Vec<ServiceFacts>) {
        self.version += 1;
        self.services.clear();
        self.by_pair.clear();
        for facts in all {
            let (ns, name) = (facts.namespace.clone(), facts.name.clone());
            self.put_service(&ns, &name, Some(facts));
        }
    }

    /// Replaces every front of one kind (a relist of that kind).
    pub fn replace_fronts(&mut self, kind: &str, all: Vec<Front>) {
        let prefix = format!("{kind}/");
        let stale: Vec<String> = self
            .fronts
            .iter()
            .filter(|(_, f)| f.id.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.remove_front_key(&key);
        }
        for front in all {
            self.put_front(front);
        }
    }

    /// What routes to a pod with these labels in this namespace: one route per class (the
    /// first Service by name that gives it), the Services with `externalTrafficPolicy: Local`,
    /// and the problems of the Services' annotations.
    pub fn lookup(
        &self,
        namespace: &str,
        labels: Option<&serde_json::Map<String, Value>>,
    ) -> Paths {
        let mut paths = Paths::default();
        let (Some(labels), Some(keys)) = (labels, self.by_pair.get(namespace)) else {
            return paths;
        };
        // The pod's labels sorted once: a candidate's selector is checked by binary search.
        let mut sorted: Vec<(&str, &str)> = labels
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
            .collect();
        sorted.sort_unstable();
        let has = |k: &str, v: &str| {
            sorted
                .binary_search_by(|(lk, _)| (*lk).cmp(k))
                .is_ok_and(|i| sorted[i].1 == v)
        };
        let mut matched: BTreeSet<&str> = BTreeSet::new();
        let mut checked = 0;
        'labels: for (k, v) in &sorted {
            let Some(names) = keys.get(*k).and_then(|values| values.get(*v)) else {
                continue;
            };
            for name in names {
                checked += 1;
                if checked > MAX_CANDIDATES {
                    paths.partial = true;
                    break 'labels;
                }
                let selects = self
                    .service(namespace, name)
                    .is_some_and(|s| s.selector.iter().all(|(k, v)| has(k, v)));
                if selects {
                    matched.insert(name);
                }
            }
        }
        let mut by_class: BTreeMap<_, Route> = BTreeMap::new();
        for name in matched {
            let Some(svc) = self.service(namespace, name) else {
                continue;
            };
            by_class.entry(svc.class).or_insert_with(|| Route {
                class: svc.class,
                why: svc.why.clone(),
            });
            if svc.local && paths.local.is_none() {
                paths.local = Some(svc.name.clone());
            }
            for problem in &svc.problems {
                if paths.problems.len() < MAX_PROBLEMS {
                    paths.problems.push(problem.clone());
                }
            }
            let key = (namespace.to_owned(), name.to_owned());
            for front in self
                .fronted
                .get(&key)
                .into_iter()
                .flatten()
                .filter_map(|k| self.fronts.get(k))
            {
                by_class.entry(front.class).or_insert_with(|| Route {
                    class: front.class,
                    why: format!("Service {} is {}", svc.name, front.role),
                });
            }
        }
        paths.routes = by_class.into_values().collect();
        paths
    }
}
