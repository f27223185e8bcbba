//! The pods every peer gets (generated with a fixed seed, plus what the generator does not
//! make) and how one peer's answers are counted against the pods as sent.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use zerodrop_testkit::cluster::Reply;
use zerodrop_testkit::pods;

/// The hand-made part of the corpus.
fn fixtures() -> Vec<(&'static str, Value)> {
    let web = json!({ "name": "web", "image": "registry.invalid/web:1" });
    let pod = |spec: Value, meta: Value| {
        let mut p = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec });
        p["metadata"]["name"] = json!("fixture");
        p
    };
    vec![
        (
            "job pod",
            pod(
                json!({ "restartPolicy": "Never", "containers": [web] }),
                json!({ "ownerReferences": [{ "apiVersion": "batch/v1", "kind": "Job",
                    "name": "j", "uid": "00000000-0000-0000-0000-000000000001", "controller": true }] }),
            ),
        ),
        (
            "native sidecar",
            pod(
                json!({ "initContainers": [{ "name": "proxy", "image": "registry.invalid/proxy:1",
                    "restartPolicy": "Always" }], "containers": [web] }),
                json!({}),
            ),
        ),
        (
            "grace 1 s",
            pod(
                json!({ "terminationGracePeriodSeconds": 1, "containers": [web] }),
                json!({}),
            ),
        ),
    ]
}

/// 200 generated pods (the acceptance test's generator, fixed seed) and the fixtures.
pub fn pods() -> Vec<(String, Value)> {
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(11),
        ..Config::default()
    });
    let mut corpus: Vec<(String, Value)> = (0..200)
        .map(|i| {
            let mut pod = pods::pod().new_tree(&mut runner).unwrap().current();
            pod["metadata"]["name"] = json!(format!("gen-{i}"));
            pod["metadata"]["namespace"] = json!(null);
            ("generated".to_owned(), pod)
        })
        .collect();
    corpus.extend(fixtures().into_iter().map(|(n, p)| (n.to_owned(), p)));
    corpus
}

/// What one peer did to the corpus, as the dry-run answers show.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub rejected: u32,
    pub mutated: u32,
    pub overwrote_prestop: u32,
    pub touched_job_or_sidecar: u32,
    pub reordered: u32,
    pub hooks_differ_from_zerodrop: u32,
    pub grace_differs_from_zerodrop: u32,
    /// With a container injected by a later webhook (the apiserver reinvokes the peer).
    pub injected_rejected: u32,
    pub injected_left_without_sleep: u32,
    pub changed_again: u32,
}

/// The preStop hooks of a pod's `list` ("containers", "initContainers") by container name:
/// a peer may reorder the list, which is its own finding.
pub fn hooks(p: &Value, list: &str) -> BTreeMap<String, Value> {
    p["spec"][list]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| (name(c), c["lifecycle"]["preStop"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn name(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_owned()
}

fn order(p: &Value) -> Vec<String> {
    p["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().map(name).collect())
        .unwrap_or_default()
}

/// Every container's lifecycle by name.
pub fn lifecycles(r: &Reply) -> BTreeMap<String, Value> {
    r.body["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| (name(c), c["lifecycle"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn grace(r: &Reply) -> Value {
    r.body["spec"]["terminationGracePeriodSeconds"].clone()
}

impl Tally {
    /// Counts one pod's single-pass answer; returns what it saw that is worth an example.
    pub fn judge(&mut self, sent: &Value, answer: &Reply, name: &str) -> Vec<String> {
        let mut seen = Vec::new();
        if answer.status != 201 {
            self.rejected += 1;
            seen.push(format!("rejected: {}", answer.body["message"]));
            return seen;
        }
        let (before, after) = (hooks(sent, "containers"), hooks(&answer.body, "containers"));
        if before != after {
            self.mutated += 1;
        }
        if before
            .iter()
            .any(|(n, b)| !b.is_null() && after.get(n) != Some(b))
        {
            self.overwrote_prestop += 1;
            seen.push(format!("overwrote: sent {before:?}, got {after:?}"));
        }
        if order(sent) != order(&answer.body) {
            self.reordered += 1;
            seen.push(format!(
                "reordered: sent {:?}, got {:?}",
                order(sent),
                order(&answer.body)
            ));
        }
        let touched = (name == "job pod" && before != after)
            || hooks(sent, "initContainers") != hooks(&answer.body, "initContainers");
        if touched {
            self.touched_job_or_sidecar += 1;
            seen.push(format!("touched {name}"));
        }
        seen
    }

    /// Counts the answer for the same pod with a container injected after the peer: the injected
    /// container should get a sleep wherever the pod's own did, and nothing else should move.
    pub fn judge_reinvoked(
        &mut self,
        sent: &Value,
        single: &Reply,
        injected: &Reply,
    ) -> Vec<String> {
        if injected.status != 201 {
            self.injected_rejected += 1;
            return vec![format!(
                "rejected with injection: {}",
                injected.body["message"]
            )];
        }
        if single.status != 201 {
            return Vec::new();
        }
        let mut seen = Vec::new();
        let own = lifecycles(single);
        let all = lifecycles(injected);
        let slept = hooks(sent, "containers") != hooks(&single.body, "containers");
        let extra = all
            .get("injected")
            .map(|l| l["preStop"].clone())
            .unwrap_or_default();
        if slept && extra.is_null() {
            self.injected_left_without_sleep += 1;
            seen.push("injected container left without a sleep".to_owned());
        }
        // The grace period may grow to cover the injected container's own sleep; anything
        // else that moves is the peer mutating the pod a second time.
        let regraced = grace(single) != grace(injected) && extra.is_null();
        if own.iter().any(|(n, l)| all.get(n) != Some(l)) || regraced {
            self.changed_again += 1;
            seen.push(format!(
                "mutated again: sent {:?}; alone {own:?}, grace {}; with injection {all:?}, grace {}",
                hooks(sent, "containers"),
                grace(single),
                grace(injected)
            ));
        }
        seen
    }
}

type Row = (&'static str, fn(&Tally) -> u32);

/// The behaviour table, one column per peer, in the order given.
pub fn table(valid: usize, peers: &[(&str, Tally)]) -> String {
    let head = peers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(" | ");
    let sep = peers.iter().map(|_| "---").collect::<Vec<_>>().join(" | ");
    let mut out = format!("| of {valid} pods valid as sent | {head} |\n| --- | {sep} |\n");
    let rows: [Row; 10] = [
        ("rejected after mutation", |t| t.rejected),
        ("preStop hooks changed", |t| t.mutated),
        ("an existing preStop overwritten", |t| t.overwrote_prestop),
        ("a Job pod or a native sidecar given a sleep", |t| {
            t.touched_job_or_sidecar
        }),
        ("containers reordered", |t| t.reordered),
        ("preStop hooks differ from zerodrop's", |t| {
            t.hooks_differ_from_zerodrop
        }),
        ("grace periods differ from zerodrop's", |t| {
            t.grace_differs_from_zerodrop
        }),
        ("container injected after it: rejected", |t| {
            t.injected_rejected
        }),
        ("container injected after it: left without a sleep", |t| {
            t.injected_left_without_sleep
        }),
        (
            "container injected after it: mutated again (own containers, or grace without a new sleep)",
            |t| t.changed_again,
        ),
    ];
    for (label, f) in rows {
        let cells = peers
            .iter()
            .map(|(_, t)| f(t).to_string())
            .collect::<Vec<_>>()
            .join(" | ");
        out += &format!("| {label} | {cells} |\n");
    }
    out
}
