//! Registry faults a real registry cannot be made to produce, from an in-process fake (and only
//! for these): 401 loops, 429, stalls, a redirect to the metadata address, a layer over the
//! bound, bad JSON, a wrong digest. Each becomes an "unknown" verdict with its reason, fast;
//! and a stalled registry never delays a pod's admission past the budget.

use crate::serve::Served;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::time::{Duration, Instant};
use zerodrop::images::inspect::LayerBudget;
use zerodrop::images::registry::{RegistryClient, RegistryConfig};
use zerodrop::images::{Inspector, Platform};
use zerodrop_core::engine::image::ImageFacts;

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!(
        "sha256:{}",
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Manifest requests the "single" repository got: one test's own (tests run concurrently; the
/// 429 test asks "limited", which answers the same).
static SINGLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

const CONFIG: &str = r#"{"config":{"Cmd":["/bin/sh","-c","./app"]}}"#;

fn manifest(layer_digest: &str) -> String {
    json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(CONFIG.as_bytes()), "size": CONFIG.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": 1 }]
    })
    .to_string()
}

async fn manifests(
    Path((repo, _reference)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match repo.as_str() {
        // A token that never works: the client must give up after one round, not loop.
        "loop" => {
            let realm = format!(
                "http://{}/token",
                headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
            );
            (
                StatusCode::UNAUTHORIZED,
                [(
                    "www-authenticate",
                    format!(r#"Bearer realm="{realm}",service="fake""#),
                )],
            )
                .into_response()
        }
        "limited" | "single" => {
            if repo == "single" {
                SINGLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // Slow enough that concurrent askers overlap.
            tokio::time::sleep(Duration::from_millis(100)).await;
            StatusCode::TOO_MANY_REQUESTS.into_response()
        }
        // Slow, and counts how many calls overlap.
        r if r.starts_with("busy") => {
            let now = BUSY.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            BUSY_MAX.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            BUSY.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            StatusCode::NOT_FOUND.into_response()
        }
        "stall" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        "redirect" => (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", "http://169.254.169.254/latest/meta-data/")],
        )
            .into_response(),
        "badjson" => (StatusCode::OK, "{not json").into_response(),
        "big" => (StatusCode::OK, manifest(&sha256(b"big"))).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn blobs(Path((_repo, digest)): Path<(String, String)>) -> Response {
    if digest == sha256(CONFIG.as_bytes()) {
        return (StatusCode::OK, CONFIG).into_response();
    }
    // Every layer is 64 MiB of zeros: over any sane bound.
    (StatusCode::OK, vec![0u8; 64 << 20]).into_response()
}

async fn fake() -> String {
    let app = Router::new()
        .route("/v2/{repo}/manifests/{reference}", get(manifests))
        .route("/v2/{repo}/blobs/{digest}", get(blobs))
        .route("/token", get(|| async { r#"{"token": "never-valid"}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    host
}

#[tokio::test]
async fn every_fault_is_an_unknown_verdict_with_its_reason_and_fast() {
    let host = fake().await;
    let mut config = RegistryConfig {
        timeout: Duration::from_millis(500),
        ..Default::default()
    };
    config.insecure.insert(host.clone());
    // The same registry by name: through zerodrop's resolver, which keeps loopback.
    let named = host.replace("127.0.0.1", "localhost");
    config.insecure.insert(named.clone());
    let budget = LayerBudget {
        max_layer_bytes: 1 << 20,
        ..Default::default()
    };
    let inspector = Inspector::new(RegistryClient::new(config).unwrap(), budget);
    let wrong = format!("{host}/badjson@sha256:{}", "0".repeat(64));
    let cases = [
        (format!("{host}/loop:1"), "unauthorized"),
        (format!("{host}/limited:1"), "429"),
        (format!("{named}/limited:1"), "429"),
        (format!("{host}/stall:1"), "timed out"),
        (
            format!("{host}/redirect:1"),
            "refused redirect to http://169.254.169.254",
        ),
        (format!("{host}/badjson:1"), "manifest"),
        (wrong, "does not match its digest"),
        (format!("{host}/big:1"), "more than 1048576 bytes"),
        // A pod's image is tenant input: its registry may not be a metadata address either,
        // written as one or (the resolver drops those addresses) as a name.
        (
            "169.254.169.254/latest/meta-data:1".to_owned(),
            "link-local or metadata address",
        ),
        (
            "metadata.google.internal/computemetadata:1".to_owned(),
            "link-local or metadata address",
        ),
        // Bracketed IPv6, without a port and IPv4-mapped: still the metadata address.
        (
            "[::ffff:169.254.169.254]/latest:1".to_owned(),
            "link-local or metadata address",
        ),
        (
            "[fe80::1]:5000/latest:1".to_owned(),
            "link-local or metadata address",
        ),
    ];
    for (image, reason) in cases {
        let started = Instant::now();
        match inspector.facts(&image, &Platform::default()).await {
            ImageFacts::Unknown(why) => assert!(why.contains(reason), "{image}: {why}"),
            ImageFacts::Known(c) => panic!("{image}: {c:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{image} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_stalled_registry_never_delays_a_pod() {
    let host = fake().await;
    let mut review: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/admission/pod-create.json"
        ))
        .unwrap(),
    )
    .unwrap();
    review["request"]["object"]["spec"]["containers"][0]["image"] =
        json!(format!("{host}/stall:1"));
    let body = serde_json::to_vec(&review).unwrap();
    for (budget, bound) in [
        ("0s", Duration::from_millis(300)),
        ("200ms", Duration::from_millis(700)),
    ] {
        let served = Served::start(&[
            "--image-inspection=true",
            "--unknown-namespace-mode",
            "enforce",
            "--insecure-registry",
            &host,
            "--image-mutate-budget",
            budget,
            "--image-timeout",
            "30s",
        ])
        .await;
        for _ in 0..3 {
            let started = Instant::now();
            let answer = served.review("/mutate", &body).await;
            assert!(
                started.elapsed() < bound,
                "budget {budget}: answered after {:?}",
                started.elapsed()
            );
            assert_eq!(answer["response"]["allowed"], true);
            assert!(
                answer["response"]["patch"].is_string(),
                "still protected: {answer}"
            );
        }
        // The miss is visible: looked up, not known.
        assert!(
            served
                .metric(r#"zerodrop_image_lookups_total{result="miss"}"#)
                .await
                .unwrap_or(0.0)
                >= 1.0
        );
    }
}

#[tokio::test]
async fn concurrent_asks_for_one_image_make_one_inspection() {
    let host = fake().await;
    let mut config = RegistryConfig::default();
    config.insecure.insert(host.clone());
    let inspector = Inspector::new(RegistryClient::new(config).unwrap(), LayerBudget::default());
    let image = format!("{host}/single:2");
    let before = SINGLE.load(std::sync::atomic::Ordering::Relaxed);
    let any = Platform::default();
    let asks = (0..20).map(|_| inspector.facts(&image, &any));
    let answers = futures::future::join_all(asks).await;
    assert!(answers.iter().all(|a| matches!(a, ImageFacts::Unknown(_))));
    let made = SINGLE.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(made, 1, "20 concurrent asks made {made} registry calls");
}

static BUSY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static BUSY_MAX: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[tokio::test]
async fn one_registry_gets_a_bounded_number_of_calls_at_once() {
    let host = fake().await;
    let mut config = RegistryConfig::default();
    config.insecure.insert(host.clone());
    let inspector = Inspector::new(RegistryClient::new(config).unwrap(), LayerBudget::default());
    let any = Platform::default();
    // 12 different images (no singleflight between them) on one registry.
    let images: Vec<String> = (0..12).map(|i| format!("{host}/busy{i}:1")).collect();
    let answers = futures::future::join_all(images.iter().map(|i| inspector.facts(i, &any))).await;
    assert!(answers.iter().all(|a| matches!(a, ImageFacts::Unknown(_))));
    let most = BUSY_MAX.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (2..=zerodrop::images::registry::PER_REGISTRY).contains(&most),
        "{most} calls at once"
    );
}
