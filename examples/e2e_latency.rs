//! Pod create latency through a real apiserver (server-side dry-run), in a namespace zerodrop
//! mutates and in one it does not, alternating, so the difference is zerodrop's added cost.
//! Usage: e2e_latency KUBECONFIG WEBHOOK_BASE_URL CA_FILE ITERATIONS

// Shared with tests/e2e; this program uses only part of it.
#[allow(dead_code)]
#[path = "../tests/e2e/cluster.rs"]
mod cluster;

use serde_json::json;
use std::time::Instant;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 4,
        "usage: e2e_latency KUBECONFIG WEBHOOK_BASE_URL CA_FILE ITERATIONS"
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
    cluster::wait_for_webhook(&client, &with).await;
    let pod = cluster::pod("bench", json!({}), json!([cluster::web()]));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..iterations + 20 {
        for (ns, out) in [(&with, &mut a), (&without, &mut b)] {
            let t = Instant::now();
            let r = cluster::create_pod(&client, ns, &pod, true).await;
            anyhow::ensure!(r.status == 201, "create failed: {}", r.body);
            // The first rounds warm connections and caches on both paths.
            if i >= 20 {
                out.push(t.elapsed().as_micros() as u64);
            }
        }
    }
    a.sort_unstable();
    b.sort_unstable();
    println!(
        "{{\"with_p50_us\":{},\"with_p99_us\":{},\"without_p50_us\":{},\"without_p99_us\":{}}}",
        percentile(&a, 0.5),
        percentile(&a, 0.99),
        percentile(&b, 0.5),
        percentile(&b, 0.99)
    );
    cluster::delete_webhooks(&client, "bench").await;
    Ok(())
}
