//! Namespaces the watch has not delivered yet (applied together with their workloads): the
//! webhook asks the real apiserver instead of falling back to --unknown-namespace-mode.

use crate::e2e::SHARED;
use crate::e2e::cluster::namespace;
use crate::e2e::harness::client;
use crate::support::router::{call, fixture, state_with};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use zerodrop::admission::{Fetch, NamespaceLookup};
use zerodrop::cluster::namespaces::NamespaceCache;
use zerodrop::policy::Mode;

#[tokio::test]
async fn an_unwatched_namespace_is_fetched_with_its_policy() {
    let c = client().await;
    let ns = namespace(
        &c,
        SHARED,
        Some("enforce"),
        json!({ "zerodrop.dev/drain-timeout": "40s" }),
    )
    .await;
    let cache = NamespaceCache::unwatched(c.clone());
    assert!(cache.layer(&ns).is_none());
    assert_eq!(cache.fetch(&ns).await, Fetch::Found);
    let layer = cache.layer(&ns).expect("known after the fetch");
    assert_eq!(layer.all.mode, Some(Mode::Enforce));
    assert_eq!(layer.all.drain_timeout, Some(40));
    assert_eq!(cache.fetch("no-such-namespace").await, Fetch::Absent);
}

#[tokio::test]
async fn the_first_pod_of_a_new_namespace_gets_its_mode() {
    let c = client().await;
    let ns = namespace(&c, SHARED, Some("enforce"), json!({})).await;
    // The router over a cache whose watch has not seen the namespace; unknown mode is audit.
    let st = state_with(Arc::new(NamespaceCache::unwatched(c.clone())), true);
    let mut review = fixture("pod-create");
    review["request"]["namespace"] = json!(ns);
    review["request"]["object"]["metadata"]["namespace"] = json!(ns);
    let (status, body) = call(
        st,
        Method::POST,
        "/mutate",
        Some("application/json"),
        serde_json::to_vec(&review).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["auditAnnotations"]["mode"], "enforce");
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
}
