//! Namespaces the namespace source has not seen: asked for, not guessed (in-process router).

use zerodrop_testkit::router as support;

use axum::http::Method;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use support::{call, fixture, review, state_with};
use zerodrop_core::admission::{Fetch, NamespaceLookup};
use zerodrop_core::policy::Layer;

/// A namespace source that learns its namespaces only when asked, like the watched cache
/// between a namespace's creation and its watch event.
struct Late {
    apiserver: HashMap<String, Arc<Layer>>,
    known: std::sync::Mutex<HashMap<String, Arc<Layer>>>,
    asked: std::sync::Mutex<Vec<String>>,
}

impl NamespaceLookup for Late {
    fn layer(&self, namespace: &str) -> Option<Arc<Layer>> {
        self.known.lock().unwrap().get(namespace).cloned()
    }

    fn fetch(&self, namespace: &str) -> futures::future::BoxFuture<'static, Fetch> {
        self.asked.lock().unwrap().push(namespace.to_owned());
        let found = self.apiserver.get(namespace).cloned();
        let result = match found {
            Some(layer) => {
                self.known
                    .lock()
                    .unwrap()
                    .insert(namespace.to_owned(), layer);
                Fetch::Found
            }
            None => Fetch::Absent,
        };
        Box::pin(std::future::ready(result))
    }
}

#[tokio::test]
async fn a_namespace_the_cache_has_not_seen_is_fetched_not_guessed() {
    let req = fixture("pod-create");
    let ns = support::namespace_of(&req);
    let late = Arc::new(Late {
        apiserver: [(
            ns.clone(),
            Arc::new(Layer::for_namespace(Some("enforce"), [])),
        )]
        .into(),
        known: Default::default(),
        asked: Default::default(),
    });
    let st = state_with(late.clone(), true);
    // --unknown-namespace-mode is audit here: a patch proves the fetched enforce layer was used.
    let resp = review(st.clone(), "/mutate", &req).await;
    assert_eq!(resp["patchType"], "JSONPatch", "{resp}");
    assert_eq!(resp["auditAnnotations"]["mode"], "enforce");

    let mut other = req.clone();
    other["request"]["namespace"] = json!("nowhere");
    other["request"]["object"]["metadata"]["namespace"] = json!("nowhere");
    let resp = review(st.clone(), "/mutate", &other).await;
    assert!(resp.get("patch").is_none(), "{resp}");
    assert_eq!(resp["auditAnnotations"]["mode"], "audit");

    // Asked once each; once known, the namespace is not asked again.
    review(st, "/mutate", &req).await;
    assert_eq!(*late.asked.lock().unwrap(), [ns.as_str(), "nowhere"]);
}

#[tokio::test]
async fn fixed_namespace_sets_are_not_asked() {
    let req = fixture("pod-create");
    let st = state_with(Arc::new(HashMap::<String, Arc<Layer>>::new()), true);
    let resp = review(st.clone(), "/mutate", &req).await;
    assert_eq!(resp["auditAnnotations"]["mode"], "audit");
    // Nothing was asked of an apiserver: every fetch counter is still at 0.
    let (_, metrics) = call(st, Method::GET, "/metrics", None, Vec::new()).await;
    let text = String::from_utf8(metrics).unwrap();
    let fetches: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("zerodrop_namespace_fetches_total{"))
        .collect();
    assert_eq!(fetches.len(), 3, "{text}");
    assert!(fetches.iter().all(|l| l.ends_with(" 0")), "{fetches:?}");
}
