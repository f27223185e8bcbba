//! Hostile but legal (and some illegal) objects through the real router: every answer is a
//! valid AdmissionReview or a 4xx with a reason, never a panic.

use zerodrop_testkit::router as support;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use support::{call, fixture, state};

async fn post(review: &Value, body: Vec<u8>) -> (StatusCode, Value, String) {
    post_as(review, "enforce", body).await
}

async fn post_in(review: &Value, mode: &str) -> (StatusCode, Value, String) {
    post_as(review, mode, serde_json::to_vec(review).unwrap()).await
}

async fn post_as(review: &Value, mode: &str, body: Vec<u8>) -> (StatusCode, Value, String) {
    let (status, bytes) = call(
        state(review, mode),
        Method::POST,
        "/mutate",
        Some("application/json"),
        body,
    )
    .await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    )
}

/// The response's JSON Patch as text.
fn patch_text(answer: &Value) -> String {
    let raw = answer["response"]["patch"].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap(),
    )
    .unwrap()
}

fn apply(review: &Value, answer: &Value) -> Value {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(answer["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&raw).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod
}

#[tokio::test]
async fn a_two_and_a_half_mebibyte_pod_is_answered_correctly() {
    let mut review = fixture("pod-create");
    let pod = &mut review["request"]["object"];
    for i in 0..2_500 {
        pod["metadata"]["annotations"][format!("bulk.example.com/k{i}")] = json!("v".repeat(500));
    }
    pod["spec"]["containers"][0]["env"] = json!(
        (0..2_500)
            .map(|i| json!({ "name": format!("E{i}"), "value": "x".repeat(500) }))
            .collect::<Vec<_>>()
    );
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() > 2_500_000, "{}", body.len());
    let (status, answer, text) = post(&review, body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let patched = apply(&review, &answer);
    assert_eq!(
        patched["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        5
    );
    assert_eq!(
        patched["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .len(),
        2_500
    );
}

#[tokio::test]
async fn a_thousand_containers() {
    let mut review = fixture("pod-create");
    // Names as long as Kubernetes allows: the ledger must still fit the annotation limit.
    let containers: Vec<Value> = (0..1_000)
        .map(|i| json!({ "name": format!("c{i:04}-{}", "x".repeat(57)), "image": "i", "ports": [{ "containerPort": 8000 + i }] }))
        .collect();
    review["request"]["object"]["spec"]["containers"] = json!(containers);
    let (status, answer, text) = post(&review, serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let patched = apply(&review, &answer);
    let annotations = patched["metadata"]["annotations"].as_object().unwrap();
    let total: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().unwrap().len())
        .sum();
    assert!(
        total <= zerodrop_core::engine::ledger::ANNOTATIONS_LIMIT,
        "{total} bytes of annotations"
    );
    let ledger = annotations["zerodrop.dev/injected"].as_str().unwrap();
    assert!(
        ledger.len() <= zerodrop_core::engine::ledger::MAX_LEDGER,
        "ledger of {} bytes",
        ledger.len()
    );
    // Audit mode: every audit annotation stays bounded too.
    let (_, audit, _) = post_in(&review, "audit").await;
    for (key, value) in audit["response"]["auditAnnotations"].as_object().unwrap() {
        let len = value.as_str().unwrap().len();
        assert!(
            len <= zerodrop_core::admission::response::MAX_AUDIT_ANNOTATION,
            "{key}: {len} bytes"
        );
    }
    assert!(
        patched["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["lifecycle"]["preStop"]["sleep"]["seconds"] == 5)
    );
    assert!(
        answer["response"]["warnings"]
            .as_array()
            .map_or(0, Vec::len)
            <= 8
    );
}

#[tokio::test]
async fn deeply_nested_json_is_skipped_or_refused_never_a_stack_overflow() {
    let review = fixture("pod-create");
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    // In a field zerodrop does not read, the parser skips it without recursing: a normal answer.
    let text = serde_json::to_string(&review).unwrap().replacen(
        "\"uid\":",
        &format!("\"deep\":{deep},\"uid\":"),
        1,
    );
    let (status, answer, reason) = post(&review, text.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{reason}");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    // In a field it keeps (inside a probe), the recursion limit refuses it with a reason.
    let text = serde_json::to_string(&review).unwrap().replacen(
        "\"tcpSocket\":",
        &format!("\"future\":{deep},\"tcpSocket\":"),
        1,
    );
    let (status, _, reason) = post(&review, text.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason.contains("recursion limit"), "{reason}");
}

#[tokio::test]
async fn duplicate_keys_non_utf8_and_out_of_range_numbers() {
    let review = fixture("pod-create");
    let text = serde_json::to_string(&review).unwrap();
    // Duplicate key in the envelope: refused with a reason.
    let dup = text.replacen("\"uid\":", "\"uid\":\"x\",\"uid\":", 1);
    let (status, _, reason) = post(&review, dup.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason.contains("duplicate field"), "{reason}");
    // Duplicate keys inside the object: the last one wins. Had the first (10 s) been used, the
    // 30 s the default policy needs would have been patched in.
    let dup = text.replacen(
        "\"terminationGracePeriodSeconds\":30",
        "\"terminationGracePeriodSeconds\":10,\"terminationGracePeriodSeconds\":30",
        1,
    );
    let (status, answer, text_out) = post(&review, dup.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{text_out}");
    let patch = patch_text(&answer);
    assert!(!patch.contains("terminationGracePeriodSeconds"), "{patch}");
    // Not UTF-8.
    let mut bad = text.clone().into_bytes();
    let at = bad.iter().position(|b| *b == b'r').unwrap();
    bad[at] = 0xff;
    let (status, _, reason) = post(&review, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}");
    // Numbers out of range: an f64 overflow is refused; a huge integer grace is left alone.
    let huge = text.replacen(
        "\"terminationGracePeriodSeconds\":30",
        "\"terminationGracePeriodSeconds\":1e400",
        1,
    );
    let (status, _, reason) = post(&review, huge.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reason}");
    let big = text.replacen(
        "\"terminationGracePeriodSeconds\":30",
        "\"terminationGracePeriodSeconds\":18446744073709551615",
        1,
    );
    let (status, answer, text_out) = post(&review, big.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{text_out}");
    let patch = patch_text(&answer);
    assert!(!patch.contains("terminationGracePeriodSeconds"), "{patch}");
}

#[tokio::test]
async fn annotation_keys_with_slash_and_tilde() {
    let mut review = fixture("pod-create");
    review["request"]["object"]["metadata"]["annotations"] =
        json!({ "a~b/c": "1", "~1/~0": "2", "zerodrop.dev/readiness-path": "/ready" });
    let (status, answer, text) = post(&review, serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let patched = apply(&review, &answer);
    assert_eq!(patched["metadata"]["annotations"]["a~b/c"], "1");
    assert_eq!(patched["metadata"]["annotations"]["~1/~0"], "2");
    assert!(patched["metadata"]["annotations"]["zerodrop.dev/injected"].is_string());
}

#[tokio::test]
async fn the_apiserver_deadline_is_honoured() {
    assert_eq!(
        zerodrop::server::router::deadline(Some("timeout=10s")),
        std::time::Duration::from_millis(9_900)
    );
    assert_eq!(
        zerodrop::server::router::deadline(Some("a=b&timeout=500ms")),
        std::time::Duration::from_millis(450)
    );
    assert_eq!(
        zerodrop::server::router::deadline(None),
        std::time::Duration::from_millis(9_900)
    );
    // A big pod and a deadline too short to evaluate it: admitted unchanged, with the uid and a warning.
    let mut review = fixture("pod-create");
    review["request"]["object"]["spec"]["containers"][0]["env"] = json!(
        (0..5_000)
            .map(|i| json!({ "name": format!("E{i}"), "value": "x".repeat(400) }))
            .collect::<Vec<_>>()
    );
    let body = serde_json::to_vec(&review).unwrap();
    let (status, bytes) = call(
        state(&review, "enforce"),
        Method::POST,
        "/mutate?timeout=1ms",
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none());
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("deadline")
    );
}
