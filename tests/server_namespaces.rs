//! Namespaces the namespace source has not seen: asked for, not guessed (in-process router).

// Shared with tests/server_router.rs, which uses all of it.
use crate::support::router as support;

use axum::http::Method;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use support::{call, fixture, review, state_with};
use zerodrop::admission::{Fetch, NamespaceLookup};
use zerodrop::policy::Layer;

/// A namespace source that learns its namespaces only when asked, like the watched cache
/// between a namespace's creation and its watch event.
struct Late {
    apiserver: HashMap<String, Arc<Layer>>,
    known: std::sync::Mutex<HashMap<String, Arc<Layer>>>,
}

impl NamespaceLookup for Late {
    fn layer(&self, namespace: &str) -> Option<Arc<Layer>> {
        self.known.lock().unwrap().get(namespace).cloned()
    }

    fn fetch(&self, namespace: &str) -> futures::future::BoxFuture<'static, Fetch> {
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
    let late = Late {
        apiserver: [(ns, Arc::new(Layer::for_namespace(Some("enforce"), [])))].into(),
        known: Default::default(),
    };
    let st = state_with(Arc::new(late), true);
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

    let (_, metrics) = call(st, Method::GET, "/metrics", None, Vec::new()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(r#"zerodrop_namespace_fetches_total{result="found"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"zerodrop_namespace_fetches_total{result="absent"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn fixed_namespace_sets_are_not_asked() {
    let req = fixture("pod-create");
    let st = state_with(Arc::new(HashMap::<String, Arc<Layer>>::new()), true);
    let resp = review(st.clone(), "/mutate", &req).await;
    assert_eq!(resp["auditAnnotations"]["mode"], "audit");
    let (_, metrics) = call(st, Method::GET, "/metrics", None, Vec::new()).await;
    assert!(
        !String::from_utf8(metrics)
            .unwrap()
            .contains("namespace_fetches_total{")
    );
}
