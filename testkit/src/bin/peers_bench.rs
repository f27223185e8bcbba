//! zerodrop against the peers on one apiserver, in one run (experiments/benchmarks/run.sh, issue "peers"): no
//! mutation (twice, for A/A noise), zerodrop, a webhook that only answers allowed, the in-tree
//! MutatingAdmissionPolicy (1.36+) and, with ZERODROP_KYVERNO, Kyverno's ClusterPolicy and
//! MutatingPolicy (experiments/peers), and zerodrop's own policy exported to the in-tree engine
//! (`zerodrop policy export`, 1.36+). Four measurements per arm, and for the export how its
//! cost grows with the pod's containers beside the webhook's:
//! 1. dry-run pod create latency, the arms interleaved request by request;
//! 2. CPU seconds per 1,000 admissions of the mutating process and of the apiserver (arms one
//!    after another, twice in alternating order; the in-tree policy's cost is the apiserver's);
//! 3. resident memory of each mutating process;
//! 4. a Deployment scale-up burst of real pods through kube-controller-manager, twice per arm
//!    in alternating order: each pod create's latency from the apiserver's audit log, and
//!    Deployment create to last pod (the mean of the two).
//!
//! Usage: peers_bench KUBECONFIG ITERATIONS CPU_ADMISSIONS BURST_PODS
//! Env: APISERVER_PID, AUDIT_LOG, ZERODROP_URL/_CA/_PID, NULL_URL/_CA/_PID, PEER_POLICY (the
//! in-tree policy file), ZERODROP_KYVERNO (optional: tools/kyverno/build.sh's
//! directory), ZERODROP_BIN (optional: the arm with the traffic path index, a zerodrop of its
//! own over ZERODROP_PATH_SERVICES Services, 10,000 by default; ZERODROP_GATEWAY_CRDS adds
//! HTTPRoutes). Prints one JSON line.

// A measuring tool, not the request path: a failed step aborts the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zerodrop_testkit::cluster;
use zerodrop_testkit::kyverno;
use zerodrop_testkit::paths_apiserver;

use anyhow::Context as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Arm {
    name: &'static str,
    ns: String,
    /// The process doing the mutation, if it is not the apiserver.
    pid: Option<u32>,
    latency_us: Vec<u64>,
}

/// Kyverno or the second zerodrop, killed when the run ends however it ends.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim_start_matches(':')
                .trim()
                .strip_suffix(" kB")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 4,
        "usage: peers_bench KUBECONFIG ITERATIONS CPU_ADMISSIONS BURST_PODS"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = std::path::PathBuf::from(&args[0]);
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let c = kube::Client::try_from(config)?;
    let (iterations, admissions, burst): (usize, usize, u32) =
        (args[1].parse()?, args[2].parse()?, args[3].parse()?);
    let apiserver: u32 = env("APISERVER_PID")?.parse()?;
    let audit_log = env("AUDIT_LOG")?;

    let mut arms = vec![
        arm(
            "no mutation",
            cluster::namespace(&c, "peers", None, json!({})).await,
            None,
        ),
        arm(
            "no mutation, second namespace (A/A)",
            cluster::namespace(&c, "peers", None, json!({})).await,
            None,
        ),
    ];
    for (webhook, name, prefix) in [
        ("peers", "zerodrop", "ZERODROP"),
        ("peers-null", "a webhook that only answers allowed", "NULL"),
    ] {
        let ca = std::fs::read_to_string(env(&format!("{prefix}_CA"))?)?;
        cluster::register_url(&c, webhook, &env(&format!("{prefix}_URL"))?, Some(&ca)).await;
        let ns = cluster::namespace(&c, webhook, Some("enforce"), json!({})).await;
        arms.push(arm(name, ns, Some(env(&format!("{prefix}_PID"))?.parse()?)));
    }
    cluster::wait_for_webhook(&c, &arms[2].ns).await;
    let _paths = match std::env::var("ZERODROP_BIN") {
        Ok(bin) => {
            let services = match std::env::var("ZERODROP_PATH_SERVICES") {
                Ok(n) => n.parse()?,
                Err(_) => 10_000,
            };
            let (child, ns) =
                paths_apiserver::serve_with_index(&c, &kubeconfig, &bin, services).await?;
            let child = Child(child);
            let pid = child.0.id();
            // A measuring tool's one-off name, for the run's lifetime.
            let name = format!("zerodrop, traffic path index on ({services} Services)");
            arms.push(arm(name.leak(), ns, Some(pid)));
            Some(child)
        }
        Err(_) => None,
    };
    if let Ok(file) = std::env::var("PEER_POLICY") {
        for doc in serde_yaml_ng::Deserializer::from_str(&std::fs::read_to_string(&file)?) {
            let obj: Value = serde::Deserialize::deserialize(doc)?;
            let plural = match obj["kind"].as_str() {
                Some("MutatingAdmissionPolicy") => "mutatingadmissionpolicies",
                _ => "mutatingadmissionpolicybindings",
            };
            let r = cluster::post(
                &c,
                &format!("/apis/admissionregistration.k8s.io/v1/{plural}"),
                &obj,
            )
            .await;
            anyhow::ensure!(matches!(r.status, 201 | 409), "{plural}: {}", r.body);
        }
        let ns = labelled(
            &c,
            json!({ cluster::PEER_LABEL: "mutating-admission-policy" }),
        )
        .await;
        cluster::wait_for(&c, &ns, Duration::from_secs(30), cluster::has_prestop).await;
        arms.push(arm("the in-tree MutatingAdmissionPolicy", ns, None));
        // zerodrop's own policy in the same engine: `zerodrop policy export`, default config.
        let options = export_options();
        let cluster = zerodrop_core::policy::ClusterPolicy::default();
        zerodrop_testkit::export::install(&c, &cluster, &options).await;
        let ns = zerodrop_testkit::export::namespace(&c, &options).await;
        arms.push(arm(EXPORTED, ns, None));
    }
    let _kyverno = match std::env::var_os("ZERODROP_KYVERNO") {
        Some(_) => {
            kyverno::install(&c).await;
            let (port, metrics) = (cluster::free_port(), cluster::free_port());
            let mut cmd = kyverno::command(&kubeconfig, port, metrics);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(
                    std::env::temp_dir().join("zerodrop-peers-kyverno.log"),
                )?);
            let child = Child(cmd.spawn()?);
            let pid = child.0.id();
            for (name, label) in [
                ("Kyverno ClusterPolicy", kyverno::CLUSTER_POLICY),
                ("Kyverno MutatingPolicy", kyverno::MUTATING_POLICY),
            ] {
                let ns = labelled(&c, kyverno::labels(label)).await;
                cluster::wait_for(&c, &ns, Duration::from_secs(180), cluster::has_prestop).await;
                arms.push(arm(name, ns, Some(pid)));
            }
            // What every other namespace pays with the chart's default webhook selector.
            let called = labelled(&c, json!({ kyverno::CALLED.0: kyverno::CALLED.1 })).await;
            arms.push(arm(
                "Kyverno called, no policy selects the pod",
                called,
                Some(pid),
            ));
            Some(child)
        }
        None => None,
    };
    let mut pod = cluster::pod("bench", json!({}), json!([cluster::web()]));
    // Behind an AWS NLB Service and an ALB Ingress where the path index is on (paths::objects);
    // the other arms do not read labels.
    pod["metadata"]["labels"] =
        json!({ "app.kubernetes.io/name": "shop-web", "app.kubernetes.io/part-of": "shop" });

    // 1. Latency, interleaved; the first rounds warm connections and caches.
    for i in 0..iterations + 20 {
        for a in arms.iter_mut() {
            let t = Instant::now();
            let r = cluster::create_pod(&c, &a.ns, &pod, true).await;
            anyhow::ensure!(r.status == 201, "create failed: {}", r.body);
            if i >= 20 {
                a.latency_us.push(t.elapsed().as_micros() as u64);
            }
        }
    }
    // 2. CPU: arms one after another, forwards then backwards, so drift is shared.
    let mut cpu = vec![(0.0, 0.0); arms.len()];
    let order: Vec<usize> = (0..arms.len()).chain((0..arms.len()).rev()).collect();
    for i in order {
        let (a0, p0) = (cpu_seconds(apiserver), arms[i].pid.map(cpu_seconds));
        for _ in 0..admissions / 2 {
            let r = cluster::create_pod(&c, &arms[i].ns, &pod, true).await;
            anyhow::ensure!(r.status == 201, "create failed: {}", r.body);
        }
        cpu[i].0 += cpu_seconds(apiserver) - a0;
        cpu[i].1 += p0.map_or(0.0, |p0| cpu_seconds(arms[i].pid.unwrap()) - p0);
    }
    // 3. and 4. The burst, arm by arm (the controller manager creates the pods).
    // Forwards then backwards, like the CPU arms: the first burst meets colder caches.
    let mut bursts = vec![(Vec::new(), 0u64); arms.len()];
    for i in (0..arms.len()).chain((0..arms.len()).rev()) {
        let (lat, all_ms) =
            zerodrop_testkit::burst::once(&c, (arms[i].name, &arms[i].ns), burst, &audit_log)
                .await?;
        bursts[i].0.extend(lat);
        bursts[i].1 += all_ms / 2;
    }
    let wide = match arms.iter().find(|a| a.name == EXPORTED) {
        Some(export) => {
            let namespaces = [&arms[0].ns, &arms[2].ns, &export.ns];
            widths(&c, namespaces, iterations.min(50)).await?
        }
        None => Vec::new(),
    };
    let scale = 1000.0 / (2 * (admissions / 2)) as f64;
    let out: Vec<Value> = arms
        .iter_mut()
        .zip(cpu)
        .zip(bursts)
        .map(|((a, (api, own)), (mut lat, all_ms))| {
            a.latency_us.sort_unstable();
            lat.sort_unstable();
            json!({
                "name": a.name,
                "p50_us": percentile(&a.latency_us, 0.5), "p99_us": percentile(&a.latency_us, 0.99),
                "apiserver_cpu_s_per_1000": api * scale,
                "process_cpu_s_per_1000": a.pid.map(|_| own * scale),
                "rss_kb": a.pid.map(|p| status_kb(p, "VmRSS")), "peak_rss_kb": a.pid.map(|p| status_kb(p, "VmHWM")),
                "burst_pods": lat.len(), "burst_p50_us": percentile(&lat, 0.5), "burst_p99_us": percentile(&lat, 0.99),
                "burst_all_created_ms": all_ms,
            })
        })
        .collect();
    println!(
        "{}",
        json!({ "iterations": iterations, "admissions": admissions, "burst": burst, "arms": out, "wide": wide })
    );
    cluster::delete_webhooks(&c, "peers").await;
    cluster::delete_webhooks(&c, "peers-null").await;
    cluster::delete_webhooks(&c, "peers-paths").await;
    Ok(())
}

/// The export's arm: its name (a zerodrop arm and an in-tree policy's, in summary.py's
/// headline) and where its objects live.
const EXPORTED: &str = "zerodrop's policy as a MutatingAdmissionPolicy";

fn export_options() -> zerodrop_core::export::Options {
    zerodrop_core::export::Options {
        name: "zerodrop-bench-export".into(),
        mode_label: "bench.zerodrop.dev/export".into(),
        namespace: "default".into(),
        ..Default::default()
    }
}

/// CEL's cost grows with the pod: dry-run p50 of pods of 1 to 128 containers with no
/// mutation, through the webhook and through the export (`namespaces`, in that order),
/// interleaved, and whether the export still mutated every container (an error or the
/// apiserver's cost limit leaves the pod as it came).
async fn widths(
    c: &kube::Client,
    namespaces: [&String; 3],
    rounds: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for n in [1, 4, 16, 64, 128] {
        let pod = zerodrop_testkit::export::wide_pod(n);
        let (mut p50, mut mutated) = ([Vec::new(), Vec::new(), Vec::new()], true);
        for _ in 0..rounds {
            for (i, ns) in namespaces.iter().enumerate() {
                let t = Instant::now();
                let r = cluster::create_pod(c, ns, &pod, true).await;
                anyhow::ensure!(r.status == 201, "{n} containers: {}", r.body);
                p50[i].push(t.elapsed().as_micros() as u64);
                mutated &= i < 2 || zerodrop_testkit::export::all_hooked(&r.body);
            }
        }
        let [none, webhook, export] = p50.map(|mut l| {
            l.sort_unstable();
            percentile(&l, 0.5)
        });
        out.push(
            json!({ "containers": n, "none_p50_us": none, "webhook_p50_us": webhook,
            "export_p50_us": export, "export_mutated": mutated }),
        );
    }
    Ok(out)
}

fn arm(name: &'static str, ns: String, pid: Option<u32>) -> Arm {
    Arm {
        name,
        ns,
        pid,
        latency_us: Vec::new(),
    }
}

/// A namespace no zerodrop webhook sees, with these labels.
async fn labelled(c: &kube::Client, labels: Value) -> String {
    let ns = cluster::namespace(c, "none", None, json!({})).await;
    cluster::label(c, &ns, labels).await;
    ns
}
