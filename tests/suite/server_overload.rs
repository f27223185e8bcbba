//! The deadline path under a flood, against the real binary: hundreds of concurrent 6 MB
//! AdmissionReviews with `?timeout=1ms` (what any pod that reaches the Service can send) keep
//! the process's memory under the chart's 128 MiB limit and its threads bounded, and real
//! admissions sent meanwhile keep being answered with their patch.

use crate::serve::Served;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CHART_MEMORY_LIMIT: u64 = 128 * 1024 * 1024;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission/pod-create.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A 6 MB review whose bulk is in annotations: the part zerodrop keeps when it decodes, so
/// the worst case for memory.
fn large_review() -> Vec<u8> {
    let mut review = fixture();
    let annotations: serde_json::Map<String, Value> = (0..6_000)
        .map(|i| (format!("example.com/a{i}"), json!("x".repeat(1_000))))
        .collect();
    review["request"]["object"]["metadata"]["annotations"] = Value::Object(annotations);
    serde_json::to_vec(&review).unwrap()
}

/// (resident bytes, high-water mark bytes, threads) of a process.
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:") * 1024,
        field("VmHWM:") * 1024,
        field("Threads:"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_large_late_requests_stays_bounded_and_real_admissions_go_on() {
    let served = Served::start(&["--standalone", "--unknown-namespace-mode", "enforce"]).await;
    let pid = served.child.id();
    let small = serde_json::to_vec(&fixture()).unwrap();
    let large = bytes::Bytes::from(large_review());
    assert!(large.len() > 6_000_000);
    let (rss_at_start, _, _) = usage(pid);

    let done = Arc::new(AtomicBool::new(false));
    let max_threads = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, max_threads) = (done.clone(), max_threads.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let (_, _, threads) = usage(pid);
                max_threads.fetch_max(threads as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Real admissions, one every 20 ms through the flood: each must come back with its patch.
    let real = {
        let (client, url, done) = (served.client.clone(), served.url("/mutate"), done.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            while !done.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(small.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let answer: Value = r.json().await.unwrap();
                        if answer["response"]["patch"].is_string() {
                            ok += 1;
                        } else {
                            failed.push(format!("no patch: {answer}"));
                        }
                    }
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, failed)
        })
    };

    // The flood: 300 concurrent senders, each with its own connection, 3 requests each.
    let started = Instant::now();
    let statuses: Vec<u16> = futures::future::join_all((0..300).map(|_| {
        let url = served.url("/mutate?timeout=1ms");
        let (client, body) = (served.client.clone(), large.clone());
        async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                seen.push(r.map_or(0, |r| r.status().as_u16()));
            }
            seen
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let flood = started.elapsed();
    // Let the work already started finish, then stop the real admissions.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let (ok, failed) = real.await.unwrap();
    let (_, high_water, _) = usage(pid);

    let answered = statuses.iter().filter(|s| **s == 200).count();
    // A 503 goes out before the body is read, and the connection is then closed under a
    // sender still writing 6 MB: the client sees the 503 or the reset (0).
    let refused = statuses.iter().filter(|s| matches!(**s, 503 | 0)).count();
    assert_eq!(
        answered + refused,
        statuses.len(),
        "only 200 (late, unchanged) or refused: {statuses:?}"
    );
    assert!(
        refused > 0,
        "the byte budget never refused anything: the test sent too little"
    );
    assert!(
        high_water < CHART_MEMORY_LIMIT,
        "peak resident memory {} MiB (from {} MiB) over the chart's limit",
        high_water >> 20,
        rss_at_start >> 20
    );
    let threads = max_threads.load(Ordering::Relaxed);
    assert!(threads <= 48, "{threads} threads");
    assert!(
        failed.is_empty(),
        "{} of {} real admissions failed: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        ok >= 5,
        "only {ok} real admissions were sent during a {flood:?} flood"
    );
    println!(
        "flood of {} in {flood:?}: {answered} answered late, {refused} refused; peak {} MiB, {threads} threads; {ok} real admissions patched",
        statuses.len(),
        high_water >> 20
    );
}
