//! Pod create latency through a real apiserver (server-side dry-run), in a namespace zerodrop
//! mutates and in two it does not, alternating: with minus without is zerodrop's added cost,
//! the two "without" namespaces differ only by the machine's noise (an A/A comparison). Given a
//! second server (testkit/src/bin/baseline.rs: allowed, no patch), a fourth namespace goes through it:
//! what calling any webhook costs the apiserver, apart from what zerodrop does. The peers
//! (Kyverno, the in-tree policy) are testkit/src/bin/peers_bench.rs's.
//! Usage: e2e_latency KUBECONFIG WEBHOOK_BASE_URL CA_FILE ITERATIONS [NULL_BASE_URL NULL_CA_FILE]

// A measuring tool, not the request path: a failed step aborts the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zerodrop_testkit::cluster;

use serde_json::json;
use std::time::Instant;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 4 || args.len() == 6,
        "usage: e2e_latency KUBECONFIG WEBHOOK_BASE_URL CA_FILE ITERATIONS [NULL_BASE_URL NULL_CA_FILE]"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = kube::config::Kubeconfig::read_from(&args[0])?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let ca = std::fs::read_to_string(&args[2])?;
    let iterations: usize = args[3].parse()?;
    cluster::register_url(&client, "bench", &args[1], Some(&ca)).await;
    let with = cluster::namespace(&client, "bench", Some("enforce"), json!({})).await;
    let without = cluster::namespace(&client, "bench", None, json!({})).await;
    let again = cluster::namespace(&client, "bench", None, json!({})).await;
    cluster::wait_for_webhook(&client, &with).await;
    let null = match args.get(4..6) {
        Some([url, ca_file]) => {
            let ca = std::fs::read_to_string(ca_file)?;
            cluster::register_url(&client, "bench-null", url, Some(&ca)).await;
            let ns = cluster::namespace(&client, "bench-null", Some("enforce"), json!({})).await;
            // The null webhook patches nothing; wait until the apiserver calls it.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            Some(ns)
        }
        _ => None,
    };
    let pod = cluster::pod("bench", json!({}), json!([cluster::web()]));
    let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations + 20 {
        let mut arms = vec![(&with, &mut a), (&without, &mut b), (&again, &mut c)];
        if let Some(ns) = &null {
            arms.push((ns, &mut d));
        }
        for (ns, out) in arms {
            let t = Instant::now();
            let r = cluster::create_pod(&client, ns, &pod, true).await;
            anyhow::ensure!(r.status == 201, "create failed: {}", r.body);
            // The first rounds warm connections and caches on both paths.
            if i >= 20 {
                out.push(t.elapsed().as_micros() as u64);
            }
        }
    }
    for v in [&mut a, &mut b, &mut c, &mut d] {
        v.sort_unstable();
    }
    let null = if d.is_empty() {
        String::new()
    } else {
        format!(
            ",\"null_p50_us\":{},\"null_p99_us\":{}",
            percentile(&d, 0.5),
            percentile(&d, 0.99)
        )
    };
    println!(
        "{{\"with_p50_us\":{},\"with_p99_us\":{},\"without_p50_us\":{},\"without_p99_us\":{},\"again_p50_us\":{},\"again_p99_us\":{}{null}}}",
        percentile(&a, 0.5),
        percentile(&a, 0.99),
        percentile(&b, 0.5),
        percentile(&b, 0.99),
        percentile(&c, 0.5),
        percentile(&c, 0.99)
    );
    cluster::delete_webhooks(&client, "bench").await;
    cluster::delete_webhooks(&client, "bench-null").await;
    Ok(())
}
