//! Namespaces the watch has not delivered yet (applied together with their workloads): the
//! webhook asks the real apiserver instead of falling back to --unknown-namespace-mode.

use crate::SHARED;
use crate::harness::client;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use zerodrop::cluster::namespaces::NamespaceCache;
use zerodrop_core::admission::{Fetch, NamespaceLookup};
use zerodrop_core::policy::Mode;
use zerodrop_testkit::cluster::namespace;
use zerodrop_testkit::router::{call, fixture, state_with};

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
    let cache = NamespaceCache::unwatched(c.clone(), Arc::default());
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
    let st = state_with(
        Arc::new(NamespaceCache::unwatched(c.clone(), Arc::default())),
        true,
    );
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

/// Requests naming namespaces that do not exist, many at once and again and again (what a
/// pod that can reach the Service can send): the real apiserver is asked at most once per
/// name per interval.
#[tokio::test]
async fn a_flood_of_unknown_namespaces_costs_one_get_per_name() {
    let c = client().await;
    let metrics = Arc::new(zerodrop::metrics::Metrics::new());
    let cache = NamespaceCache::unwatched(c.clone(), metrics.clone());
    let names: Vec<String> = (0..20).map(|i| format!("no-such-namespace-{i}")).collect();
    for _round in 0..5 {
        let asks = names.iter().cycle().take(200).map(|name| cache.fetch(name));
        let results = futures::future::join_all(asks).await;
        assert!(results.iter().all(|r| *r == Fetch::Absent), "{results:?}");
    }
    let text = metrics.encode();
    let gets: u64 = text
        .lines()
        .filter(|l| l.starts_with("zerodrop_namespace_fetches_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        gets, 20,
        "1,000 asks for 20 names made {gets} GETs:\n{text}"
    );
}
