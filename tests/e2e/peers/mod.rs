//! zerodrop and the peers a platform engineer would otherwise install, on one corpus through
//! the same apiserver (server-side dry-run): the in-tree MutatingAdmissionPolicy
//! (experiments/peers/mutating-admission-policy.yaml, served from 1.36) and, when the benchmark hands
//! over a built Kyverno (`ZERODROP_KYVERNO`, experiments/benchmarks/run.sh), Kyverno's two policies
//! (experiments/peers). Each peer's answers are counted (rejected, overwritten, Jobs and
//! sidecars touched, differences to zerodrop, reinvocation after a later injector); zerodrop's
//! own guarantees are asserted on every version. `ZERODROP_PEERS_TABLE=F` writes the table to F.

mod corpus;
mod properties;
mod setup;

use crate::harness::{client, server_minor};
use crate::{SHARED, shared};
use corpus::Tally;
use serde_json::{Value, json};
use setup::Peer;
use std::time::Duration;
use zerodrop_core::engine::{Capabilities, Engine, Workload};
use zerodrop_core::export;
use zerodrop_core::policy::{ClusterPolicy, LEDGER_ANNOTATION, Layer};
use zerodrop_testkit::cluster::Reply;
use zerodrop_testkit::cluster::{PEER_LABEL, create_pod, has_prestop, namespace, post, wait_for};
use zerodrop_testkit::kyverno;

/// The exported policy's peer, and the namespace label that selects it (and gives the mode).
const EXPORTED: &str = "zerodrop policy export";
const EXPORT_LABEL: &str = "e2e.zerodrop.dev/export";

fn export_options() -> export::Options {
    export::Options {
        name: "zerodrop-export".into(),
        mode_label: EXPORT_LABEL.into(),
        namespace: "default".into(),
        ..export::Options::default()
    }
}

/// The fields zerodrop owns: each container's lifecycle and readiness probe, the grace period,
/// the ledger.
fn owned(pod: &Value) -> Value {
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!([c["name"], c["lifecycle"], c["readinessProbe"]]))
        .collect();
    json!({
        "containers": containers,
        "grace": pod["spec"]["terminationGracePeriodSeconds"],
        "ledger": pod["metadata"]["annotations"][LEDGER_ANNOTATION],
    })
}

/// The exported policy's answer at the owned fields: the webhook's, or, for a pod it declines
/// (export::declined says which, and why), the pod as the apiserver made it without either
/// (`bare`). Ok: whether it declined; Err: how it differs.
fn export_agrees(
    sent: &Value,
    [policy, webhook, bare]: [&Reply; 3],
    minor: u32,
    namespace: &Layer,
) -> Result<Option<export::Decline>, String> {
    if policy.status != 201 || webhook.status != 201 {
        return Err(format!("status {} / {}", policy.status, webhook.status));
    }
    let cluster = ClusterPolicy::default();
    let engine = Engine::new(cluster.clone(), Capabilities { minor });
    let namespace = namespace.clone();
    let decision = engine.evaluate(sent, Workload::Pod, &namespace);
    let declined = export::declined(sent, &namespace, &cluster, &decision);
    let want = match declined {
        Some(_) => owned(&bare.body),
        None => owned(&webhook.body),
    };
    let got = owned(&policy.body);
    if got != want {
        return Err(format!(
            "declined: {declined:?}\n policy: {got}\n wanted: {want}"
        ));
    }
    Ok(declined)
}

/// The exported policy installed (once per apiserver) and its peer's namespaces, ready.
async fn export_peer(c: &kube::Client) -> Peer {
    zerodrop_testkit::export::install(c, &ClusterPolicy::default(), &export_options()).await;
    let labels = json!({ EXPORT_LABEL: "enforce" });
    let p = setup::peer(c, EXPORTED, "none", None, labels).await;
    wait_for(c, &p.ns, Duration::from_secs(60), has_prestop).await;
    p
}

/// An adaptive pod under the exported policy gets what the webhook gives it without the setting
/// (the fixed sleep), not nothing; the webhook gives it the waiter.
#[tokio::test]
async fn the_export_gives_an_adaptive_pod_the_sleep() {
    let c = client().await;
    if server_minor(&c).await < export::MIN_MINOR {
        return; // MAP v1 is not served: the corpus test asserts the 404
    }
    shared().await;
    let exported = export_peer(&c).await;
    let webhook = namespace(&c, SHARED, Some("enforce"), json!({})).await;
    let adaptive = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "adaptive", "annotations": { "zerodrop.dev/drain": "adaptive" } },
        "spec": { "containers": [{ "name": "web", "image": "registry.invalid/web:1",
                                   "ports": [{ "containerPort": 8080 }] }] }
    });
    let policy = create_pod(&c, &exported.ns, &adaptive, true).await;
    let waiter = create_pod(&c, &webhook, &adaptive, true).await;
    let view = export::sleeping(&adaptive).unwrap();
    let sleep = create_pod(&c, &webhook, &view, true).await;
    assert_eq!(policy.status, 201, "{}", policy.body);
    let hook = &policy.body["spec"]["containers"][0]["lifecycle"]["preStop"];
    assert_eq!(hook["sleep"]["seconds"], 5, "{}", policy.body);
    assert_eq!(owned(&policy.body), owned(&sleep.body));
    assert_eq!(
        waiter.body["spec"]["initContainers"][0]["name"], "zerodrop-drain",
        "{}",
        waiter.body
    );
}

fn mutating_admission_policy() -> Vec<Value> {
    kyverno::documents("mutating-admission-policy.yaml")
}

/// What CI checks of the Kyverno peer without building Kyverno: both policies are valid
/// objects of Kyverno 1.19's CRDs (strict field validation), and the CEL one carries exactly the
/// in-tree policy's CEL, which the apiserver compiles in the corpus test.
#[tokio::test]
async fn the_kyverno_policies_are_valid_kyverno_objects() {
    let c = client().await;
    // Kyverno's CRDs include the PolicyReport's, which policy_reports() must install itself
    // after checking `--policy-report` without it: that half first, whatever the test order
    // (a run of peers:: with scan::under_the_policy failed on it).
    crate::audit::policy_reports().await;
    kyverno::install_crds(&c, &kyverno::crds_dir()).await;
    for (path, policy) in kyverno::policies() {
        let r = post(
            &c,
            &format!("{path}?dryRun=All&fieldValidation=Strict"),
            &policy,
        )
        .await;
        assert_eq!(r.status, 201, "{path}: {}", r.body);
        // Kyverno 1.19 deprecates kyverno.io/v1 (it recommends the CEL MutatingPolicy); any
        // other warning (a duplicate field, say) is a fault in the file.
        let unexpected: Vec<_> = r
            .warnings
            .iter()
            .filter(|w| !w.contains("deprecated"))
            .collect();
        assert!(unexpected.is_empty(), "{path}: {unexpected:?}");
    }
    let map = &mutating_admission_policy()[0]["spec"];
    let mpol = &kyverno::policies()[1].1["spec"];
    assert_eq!(mpol["mutations"], map["mutations"]);
    assert_eq!(mpol["matchConditions"], map["matchConditions"]);
    // The namespaces the corpus test and the benchmark label are the ones the policies select.
    let cpol = &kyverno::policies()[0].1["spec"]["rules"];
    for rule in cpol.as_array().unwrap() {
        let selector = &rule["match"]["any"][0]["resources"]["namespaceSelector"]["matchLabels"];
        assert_eq!(selector[PEER_LABEL], kyverno::CLUSTER_POLICY, "{rule}");
    }
    let selector = &mpol["matchConstraints"]["namespaceSelector"]["matchLabels"];
    assert_eq!(selector[PEER_LABEL], kyverno::MUTATING_POLICY);
}

#[tokio::test]
async fn the_peers_on_one_corpus() {
    shared().await;
    let c = client().await;
    let minor = server_minor(&c).await;
    let injector = setup::injector(&c).await;
    let mut peers = Vec::new();
    let docs = mutating_admission_policy();
    let created = post(
        &c,
        "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies",
        &docs[0],
    )
    .await;
    if minor < 36 {
        assert_eq!(
            created.status, 404,
            "1.{minor} serves MAP v1: {}",
            created.body
        );
    } else {
        assert!(matches!(created.status, 201 | 409), "{}", created.body);
        let path = "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings";
        let bound = post(&c, path, &docs[1]).await;
        assert!(matches!(bound.status, 201 | 409), "{}", bound.body);
        let labels = json!({ PEER_LABEL: "mutating-admission-policy" });
        let p = setup::peer(&c, "MutatingAdmissionPolicy", "none", None, labels).await;
        wait_for(&c, &p.ns, Duration::from_secs(60), has_prestop).await;
        peers.push(p);
        let p = export_peer(&c).await;
        peers.push(p);
    }
    let _kyverno = match std::env::var_os("ZERODROP_KYVERNO") {
        Some(_) => {
            let (child, ps) = setup::kyverno(&c).await;
            peers.extend(ps);
            Some(child)
        }
        None => None,
    };
    let zd = setup::peer(&c, "zerodrop", SHARED, Some("enforce"), json!({})).await;
    for p in peers.iter().chain([&zd]) {
        wait_for(&c, &p.injected_ns, Duration::from_secs(60), setup::injected).await;
    }
    peers.push(zd);

    let plain = namespace(&c, "none", None, json!({})).await;
    let mut tallies = vec![Tally::default(); peers.len()];
    let mut valid = 0;
    let mut examples = std::collections::BTreeMap::new();
    let mut export_differences = Vec::new();
    let (mut export_mutated, mut export_declined) = (0u32, 0u32);
    for (name, pod) in &corpus::pods() {
        let bare = create_pod(&c, &plain, pod, true).await;
        if bare.status != 201 {
            continue; // invalid as sent
        }
        valid += 1;
        let mut answers = Vec::new();
        for (p, t) in peers.iter().zip(&mut tallies) {
            let single = create_pod(&c, &p.ns, pod, true).await;
            let injected = create_pod(&c, &p.injected_ns, pod, true).await;
            let mut seen = t.judge(pod, &single, name);
            seen.extend(t.judge_reinvoked(pod, &single, &injected));
            for note in seen {
                let kind = note.split(':').next().unwrap_or_default().to_owned();
                let kept = examples.entry((p.name, kind)).or_insert_with(Vec::new);
                if kept.len() < 2 {
                    kept.push(format!("{} ({name}): {note}", pod["metadata"]["name"]));
                }
            }
            answers.push(single);
        }
        let zd = answers.last().unwrap();
        if let Some(i) = peers.iter().position(|p| p.name == EXPORTED) {
            // An adaptive pod: the policy gives the sleep, the webhook's answer without the
            // setting (export::sleeping).
            let view = export::sleeping(pod);
            let again = match &view {
                Some(v) => Some(create_pod(&c, &peers.last().unwrap().ns, v, true).await),
                None => None,
            };
            let (sent, webhook) = (view.as_ref().unwrap_or(pod), again.as_ref().unwrap_or(zd));
            let layer = Layer::for_namespace(Some("enforce"), std::iter::empty::<(&str, &str)>());
            match export_agrees(sent, [&answers[i], webhook, &bare], minor, &layer) {
                Err(difference) => export_differences.push(format!("{name}: {difference}")),
                Ok(Some(_)) => export_declined += 1,
                // Equal where the webhook changed something: the comparison had work to do.
                Ok(None) => export_mutated += u32::from(owned(&zd.body) != owned(&bare.body)),
            }
        }
        for (t, a) in tallies.iter_mut().zip(&answers) {
            t.hooks_differ_from_zerodrop +=
                u32::from(corpus::lifecycles(a) != corpus::lifecycles(zd));
            t.grace_differs_from_zerodrop += u32::from(corpus::grace(a) != corpus::grace(zd));
        }
    }
    setup::delete_injector(&c).await;
    injector.task.abort();
    let named: Vec<(&str, Tally)> = peers
        .iter()
        .map(|p: &Peer| p.name)
        .zip(tallies.iter().copied())
        .collect();
    let table = corpus::table(valid, &named);
    eprintln!("peers on 1.{minor}:\n{table}");
    for ((peer, _), notes) in &examples {
        for n in notes {
            eprintln!("{peer}: {n}");
        }
    }
    if let Some(path) = std::env::var_os("ZERODROP_PEERS_TABLE") {
        std::fs::write(path, &table).unwrap();
    }
    assert!(valid >= 120, "only {valid} valid pods");
    let zd = *tallies.last().unwrap();
    assert!(zd.mutated > 0, "{zd:?}");
    assert_eq!(
        (zd.rejected, zd.overwrote_prestop, zd.touched_job_or_sidecar),
        (0, 0, 0),
        "{zd:?}"
    );
    assert_eq!(
        (
            zd.injected_rejected,
            zd.injected_left_without_sleep,
            zd.changed_again
        ),
        (0, 0, 0),
        "{zd:?}"
    );
    // The exported policy decides as the webhook at every field zerodrop owns, except on the
    // pods it declines (export::declined says which, and why).
    assert!(export_differences.is_empty(), "{export_differences:#?}");
    if minor >= export::MIN_MINOR {
        eprintln!(
            "export: {export_mutated} pods mutated as the webhook, {export_declined} declined"
        );
        assert!(
            export_mutated > export_declined,
            "{export_mutated} / {export_declined}"
        );
    }
    // Every peer is live and does mutate.
    for (name, t) in &named {
        assert!(t.mutated > 0, "{name}: {t:?}");
    }
}

/// Config values with quotes, backslashes and commas reach the pod as the engine reads them:
/// the config travels as the policy's parameters, so the policy's CEL is the same for every
/// config.
#[tokio::test]
async fn an_awkward_config_reaches_the_pod_through_the_parameters() {
    let c = client().await;
    if server_minor(&c).await < export::MIN_MINOR {
        return; // MAP v1 is not served: the corpus test asserts the 404
    }
    let cluster = ClusterPolicy::from_yaml(
        "defaults:\n  readiness-path: \"/it's\\\\ok\\\",\"\n  prestop-sleep: 7s\n\
         sidecar-containers: [\"o'brien\", side]\nmax-grace-period: 30\n",
    )
    .unwrap();
    assert_eq!(
        cluster.defaults.readiness_path.as_deref(),
        Some("/it's\\ok\",")
    );
    let label = "e2e.zerodrop.dev/awkward";
    let options = export::Options {
        name: "zerodrop-export-awkward".into(),
        mode_label: label.into(),
        ..export_options()
    };
    zerodrop_testkit::export::install(&c, &cluster, &options).await;
    let ns = namespace(&c, "none", None, json!({})).await;
    zerodrop_testkit::cluster::label(&c, &ns, json!({ label: "enforce" })).await;
    wait_for(&c, &ns, Duration::from_secs(60), has_prestop).await;
    let sent = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "awkward", "annotations": { "zerodrop.dev/drain-timeout": "40s" } },
        "spec": { "containers": [
            { "name": "web", "image": "registry.invalid/web:1",
              "ports": [{ "name": "http", "containerPort": 8080 }] },
            { "name": "side", "image": "registry.invalid/side:1" }
        ] }
    });
    let got = create_pod(&c, &ns, &sent, true).await;
    assert_eq!(got.status, 201, "{}", got.body);
    // What the engine decides under the same config, applied to the same pod.
    let engine = Engine::new(cluster, Capabilities { minor: 37 });
    let layer = Layer::for_namespace(Some("enforce"), std::iter::empty::<(&str, &str)>());
    let decision = engine.evaluate(&sent, Workload::Pod, &layer);
    let mut want = sent.clone();
    json_patch::patch(&mut want, &decision.patch).unwrap();
    // Through the apiserver's defaulting too, in a namespace no mutator selects.
    let plain = namespace(&c, "none", None, json!({})).await;
    let want = create_pod(&c, &plain, &want, true).await.body;
    let web = &got.body["spec"]["containers"][0];
    assert_eq!(web["readinessProbe"]["httpGet"]["path"], "/it's\\ok\",");
    assert_eq!(web["lifecycle"]["preStop"]["sleep"]["seconds"], 7);
    assert!(got.body["spec"]["containers"][1]["lifecycle"].is_null());
    assert_eq!(got.body["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(owned(&got.body), owned(&want), "{}", got.body);
}
