//! `zerodrop verify`'s result: what was sent, what failed (by class and by moment, timed against
//! the action), what the pods carried, the advice, the sweep's recommendation; as a table for a
//! terminal or JSON. Pure.

use super::advice::{Advice, Cause, Moment, Readiness};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Failures listed per action run, at most.
pub const SHOWN_FAILURES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub namespace: String,
    pub service: String,
    /// `clusterIP:port` and path the load went to.
    pub load: String,
    pub path: String,
    pub method: String,
    pub keepalive: bool,
    pub rate: u32,
    pub runs: Vec<ActionRun>,
    pub carried: Carried,
    pub advice: Vec<Advice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended_sleep_s: Option<u64>,
    /// What verify put back at the end, after the workload converged again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
}

/// One measured action (a restart or a scale-down and back).
#[derive(Debug, Clone, Serialize)]
pub struct ActionRun {
    pub action: &'static str,
    pub repetition: u32,
    /// The `prestop-sleep` the sweep set for this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleep_s: Option<u64>,
    pub sent: u64,
    pub failed: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub by_moment: BTreeMap<String, u64>,
    /// What can change them (`advice::Cause`): the sweep recommends from `routing` alone.
    pub by_cause: BTreeMap<String, u64>,
    /// From the action to convergence.
    pub rollout_s: f64,
    /// Under the adaptive drain: each deleted pod's waiter line (how long, why it ended).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<super::advice::DrainLine>,
    /// The first failures: ms relative to the action (negative: before it), class, moment.
    pub failures: Vec<Timed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timed {
    pub after_action_ms: i64,
    pub kind: String,
    pub moment: Moment,
}

/// What the pods carried after the rollout (from the spec and zerodrop's ledger).
#[derive(Debug, Clone, Serialize)]
pub struct Carried {
    pub prestop: Option<String>,
    pub grace_s: i64,
    pub readiness: Readiness,
    /// zerodrop's ledger annotation, as written.
    pub ledger: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepPoint {
    pub sleep_s: u64,
    /// Failed requests per run of pods that carried this sleep (the restore's rollout, which
    /// replaces the last value's pods, is one of its runs).
    pub failed: Vec<u64>,
    /// Of those, the ones a sleep governs (`routing`): what the recommendation is made from.
    pub routing: Vec<u64>,
    /// Of those, kept-alive connections the app closed at SIGTERM: no sleep changes them.
    pub app_close: Vec<u64>,
}

/// The sweep's points from its runs, in the order they ran.
pub fn sweep_points(runs: &[ActionRun]) -> Vec<SweepPoint> {
    let mut points: Vec<SweepPoint> = Vec::new();
    for r in runs {
        let Some(sleep_s) = r.sleep_s else { continue };
        let i = match points.iter().position(|p| p.sleep_s == sleep_s) {
            Some(i) => i,
            None => {
                points.push(SweepPoint {
                    sleep_s,
                    failed: Vec::new(),
                    routing: Vec::new(),
                    app_close: Vec::new(),
                });
                points.len() - 1
            }
        };
        let count = |c: Cause| r.by_cause.get(c.as_str()).copied().unwrap_or(0);
        points[i].failed.push(r.failed);
        points[i].routing.push(count(Cause::Routing));
        points[i].app_close.push(count(Cause::AppClose));
    }
    points
}

/// The smallest swept sleep whose runs lost nothing to routing, when every larger one lost
/// nothing either (a lucky zero below a failing value proves nothing); and what to set: that
/// plus half again, at least a second, as margin for a busier day. Failures no sleep changes
/// (a new pod's readiness, the app closing kept-alive connections) do not move it.
pub fn recommend(points: &[SweepPoint]) -> Option<(u64, u64)> {
    let mut sorted: Vec<&SweepPoint> = points.iter().collect();
    sorted.sort_by_key(|p| p.sleep_s);
    let clean = |p: &&SweepPoint| !p.routing.is_empty() && p.routing.iter().all(|&f| f == 0);
    let first_safe = sorted
        .iter()
        .rposition(|p| !clean(p))
        .map_or(0, |last_bad| last_bad + 1);
    let safe = sorted.get(first_safe)?.sleep_s;
    Some((safe, safe + (safe / 2).max(1)))
}

impl Report {
    pub fn failed(&self) -> u64 {
        self.runs.iter().map(|r| r.failed).sum()
    }

    /// The table a terminal shows.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} in {}: {} http://{}{} at {} req/s through Service {}, keep-alive {}",
            self.target,
            self.namespace,
            self.method,
            self.load,
            self.path,
            self.rate,
            self.service,
            if self.keepalive { "on" } else { "off" }
        );
        let _ = writeln!(
            out,
            "\n{:<12} {:>4} {:>6} {:>8} {:>7} {:>10}  failures",
            "action", "rep", "sleep", "sent", "failed", "rollout"
        );
        for r in &self.runs {
            let kinds = r
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .chain(r.by_moment.iter().map(|(m, n)| format!("at {m} {n}")))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "{:<12} {:>4} {:>6} {:>8} {:>7} {:>9.1}s  {}",
                r.action,
                r.repetition,
                r.sleep_s.map_or("-".into(), |s| format!("{s}s")),
                r.sent,
                r.failed,
                r.rollout_s,
                if kinds.is_empty() { "-".into() } else { kinds }
            );
            if !r.waits.is_empty() {
                let _ = writeln!(out, "{:<12} {}", "", waits(&r.waits));
            }
        }
        let c = &self.carried;
        let _ = writeln!(
            out,
            "\npods carried: preStop {}, grace {}s, readiness {:?}{}",
            c.prestop.as_deref().unwrap_or("none"),
            c.grace_s,
            c.readiness,
            c.ledger
                .as_deref()
                .map_or(String::new(), |l| format!(", zerodrop ledger {l}"))
        );
        if !self.sweep.is_empty() {
            let _ = writeln!(
                out,
                "\nprestop-sleep sweep (failed per run; routing: what a sleep governs; app-close: kept-alive connections the app closed at SIGTERM):"
            );
            for p in &self.sweep {
                let _ = writeln!(
                    out,
                    "  {:>3}s  failed {:?}  routing {:?}  app-close {:?}",
                    p.sleep_s, p.failed, p.routing, p.app_close
                );
            }
            match recommend(&self.sweep) {
                Some((safe, set)) => {
                    let _ = writeln!(
                        out,
                        "  smallest sleep with no routing failure: {safe}s; set zerodrop.dev/prestop-sleep: \"{set}s\""
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  no swept sleep was free of routing failures: routing here is slower than the largest value swept; sweep larger values"
                    );
                }
            }
            if self.sweep.iter().any(|p| p.routing.len() < 2) {
                let _ = writeln!(
                    out,
                    "  one run for a value: a single stray failure there moves the recommendation to the next larger value; --repeat 2 or more to confirm"
                );
            }
        }
        if let Some(restored) = &self.restored {
            let _ = writeln!(out, "\nput back: {restored}");
        }
        let total = self.failed();
        let sent: u64 = self.runs.iter().map(|r| r.sent).sum();
        let _ = writeln!(out, "\nresult: {total} of {sent} requests failed");
        for a in &self.advice {
            let _ = writeln!(out, "advice ({}): {}", a.key, a.text);
        }
        out
    }
}

/// `drain waits 2.0-3.1s (quiet 2, max 1)`: the waiters' waits of one run, next to its failures.
pub fn waits(lines: &[super::advice::DrainLine]) -> String {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let min = lines.iter().map(|l| l.waited_ms).min().unwrap_or(0);
    let max = lines.iter().map(|l| l.waited_ms).max().unwrap_or(0);
    let mut endings: BTreeMap<&str, usize> = BTreeMap::new();
    for l in lines {
        *endings.entry(l.ending.as_str()).or_default() += 1;
    }
    let endings = endings
        .iter()
        .map(|(e, n)| format!("{e} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("drain waits {:.1}-{:.1}s ({endings})", secs(min), secs(max))
}
