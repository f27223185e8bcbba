//! `zerodrop verify`'s judgement, table-driven: where a failure falls in a rollout and what can
//! change it, the advice rules, when the load before any action is steady, the sweep's
//! recommendation and the report. (Against a real cluster: experiments/proof's verify run.)

use std::collections::BTreeMap;
use zerodrop::verify::advice::{self, Cause, Moment, Observed, PodEvents, Readiness};
use zerodrop::verify::report::{
    ActionRun, Carried, Report, SweepPoint, Timed, recommend, sweep_points,
};
use zerodrop::verify::steady::{self, Verdict, Window};

fn old(name: &str, deleted: u64, sleep_ms: u64) -> PodEvents {
    PodEvents {
        name: name.into(),
        deleted_ms: Some(deleted),
        prestop_sleep_ms: sleep_ms,
        ready_ms: None,
        drain: None,
    }
}

fn new(name: &str, ready: u64) -> PodEvents {
    PodEvents {
        name: name.into(),
        deleted_ms: None,
        prestop_sleep_ms: 0,
        ready_ms: Some(ready),
        drain: None,
    }
}

#[test]
fn a_failure_is_placed_at_a_start_in_a_sleep_or_at_sigterm() {
    let pods = [
        old("a", 10_000, 5_000),
        new("b", 9_000),
        old("c", 30_000, 0),
    ];
    for (at, want) in [
        (9_500, Moment::Start),  // b joined 0.5 s before
        (11_900, Moment::Start), // still b's first 3 s
        (13_000, Moment::Sleep), // a deleted, its SIGTERM 2 s away
        (15_200, Moment::Sigterm),
        (14_100, Moment::Sigterm),
        (30_300, Moment::Sigterm), // c has no sleep: SIGTERM at deletion
        (5_000, Moment::Other),
    ] {
        assert_eq!(advice::moment(at, false, &pods), want, "at {at}");
    }
    // A 503 from a pod in its first seconds is its start, even beside another pod's SIGTERM.
    let pods = [old("a", 10_000, 5_000), new("b", 14_500)];
    assert_eq!(advice::moment(15_100, false, &pods), Moment::Sigterm);
    assert_eq!(advice::moment(15_100, true, &pods), Moment::Start);
}

#[test]
fn only_failures_routing_causes_are_the_sleeps_to_fix() {
    // a: deleted at 10 s with a 2 s sleep (SIGTERM at 12 s); c: no sleep (SIGTERM at 30 s).
    let pods = [
        old("a", 10_000, 2_000),
        new("b", 2_000),
        old("c", 30_000, 0),
    ];
    for (at, answered, reused, want) in [
        // A new connection routed to a pod that stopped serving: routing, at SIGTERM or after.
        (12_100, false, false, Cause::Routing),
        (14_500, false, false, Cause::Routing),
        (30_200, false, false, Cause::Routing),
        // A kept-alive connection the app closes at its SIGTERM: kube-proxy pinned it.
        (12_100, false, true, Cause::AppClose),
        (30_200, false, true, Cause::AppClose),
        (14_500, false, true, Cause::AppClose),
        // Kept alive, but the pod still serves (1 s or more before its SIGTERM): not the app's close.
        (10_500, false, true, Cause::Other),
        // A new pod's first seconds: readiness.
        (2_500, false, false, Cause::Readiness),
        (6_000, false, false, Cause::Other),
    ] {
        assert_eq!(
            advice::cause(at, answered, reused, &pods),
            want,
            "at {at} answered {answered} reused {reused}"
        );
    }
    // A draining pod's 503: to a new connection, routing; on a kept-alive one, the app's. (While
    // a new pod is young an answer is taken for its readiness, as `moment` places it.)
    let draining = [old("a", 10_000, 2_000)];
    assert_eq!(
        advice::cause(12_300, true, false, &draining),
        Cause::Routing
    );
    assert_eq!(
        advice::cause(12_300, true, true, &draining),
        Cause::AppClose
    );
    assert_eq!(advice::cause(12_300, true, false, &pods), Cause::Readiness);
}

fn seen() -> Observed {
    Observed {
        mode: Some("enforce".into()),
        installed: Some(true),
        prestop: true,
        prestop_sleep_s: 5,
        readiness: Readiness::Own,
        escaped: 0,
        shell: Vec::new(),
        at_start: 0,
        routing: 0,
        app_close: 0,
        other: 0,
    }
}

#[test]
fn advice_names_the_setting_for_each_cause() {
    type Case = (
        &'static str,
        fn(&mut Observed),
        &'static [&'static str],
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("clean", |_| {}, &[], ""),
        (
            "no zerodrop",
            |o| {
                o.mode = None;
                o.prestop = false;
                o.routing = 9;
            },
            &["label-namespace"],
            "kubectl label namespace staging zerodrop.dev/mode=enforce",
        ),
        (
            "zerodrop not installed",
            |o| {
                o.mode = None;
                o.installed = Some(false);
                o.prestop = false;
                o.routing = 9;
            },
            &["install-zerodrop"],
            "install it first (`helm install zerodrop charts/zerodrop",
        ),
        (
            "installed unknown: the label advice",
            |o| {
                o.mode = None;
                o.installed = None;
                o.prestop = false;
            },
            &["label-namespace"],
            "zerodrop.dev/mode=enforce",
        ),
        (
            "audit only",
            |o| {
                o.mode = Some("audit".into());
                o.prestop = false;
            },
            &["label-namespace"],
            "zerodrop.dev/mode=enforce",
        ),
        (
            "escaped",
            |o| o.escaped = 2,
            &["escaped"],
            "check `zerodrop_admission_requests_total`",
        ),
        (
            "tcp probe",
            |o| {
                o.readiness = Readiness::Tcp;
                o.at_start = 4;
            },
            &["readiness-path"],
            "a TCP readiness probe only proves the port is open",
        ),
        (
            "no probe",
            |o| {
                o.readiness = Readiness::None;
                o.at_start = 4;
            },
            &["readiness-path"],
            "without a readiness probe",
        ),
        ("own probe", |o| o.at_start = 4, &[], ""),
        (
            "slow routing",
            |o| o.routing = 3,
            &["prestop-sleep"],
            "longer than the 5s preStop sleep",
        ),
        (
            "keep-alive close",
            |o| o.app_close = 2,
            &["app-drain"],
            "answer `Connection: close`",
        ),
        (
            "keep-alive close without a preStop: the label and the app",
            |o| {
                o.mode = None;
                o.prestop = false;
                o.app_close = 2;
            },
            &["label-namespace", "app-drain"],
            "no preStop sleep moves a connection pinned to its pod",
        ),
        (
            "both at once",
            |o| {
                o.routing = 1;
                o.app_close = 2;
            },
            &["prestop-sleep", "app-drain"],
            "1 request(s) reached pods after their deletion",
        ),
        (
            "shell",
            |o| o.shell = vec!["ZD301 container app: sh stays PID 1".into()],
            &["shell-pid1"],
            "zerodrop.dev/shell-exec",
        ),
    ];
    for (name, change, keys, says) in cases {
        let mut o = seen();
        change(&mut o);
        let got = advice::advise("staging", &o);
        let got_keys: Vec<&str> = got.iter().map(|a| a.key).collect();
        assert_eq!(got_keys, keys, "{name}");
        assert!(
            got.iter().any(|a| a.text.contains(says)) || says.is_empty(),
            "{name}: {got:?}"
        );
    }
}

#[test]
fn the_load_is_steady_settling_or_failing_at_rest() {
    let w = |elapsed_ms, sent, failed, answered| Window {
        elapsed_ms,
        sent,
        failed,
        answered,
    };
    for (name, window, before, want) in [
        ("too early", w(1_000, 50, 0, 0), 0, Verdict::Wait),
        ("a clean window", w(5_000, 250, 0, 0), 0, Verdict::Steady),
        // kube-proxy programs the Service during the first window: try another.
        ("first window lossy", w(5_000, 250, 60, 0), 0, Verdict::Next),
        (
            "first window mostly lost",
            w(5_000, 250, 200, 0),
            0,
            Verdict::Next,
        ),
        (
            "a later window mostly lost",
            w(5_000, 250, 130, 0),
            1,
            Verdict::AtRest,
        ),
        (
            "a later window a little lossy",
            w(5_000, 250, 3, 0),
            2,
            Verdict::Next,
        ),
        (
            "the sixth lossy window",
            w(5_000, 250, 3, 0),
            5,
            Verdict::AtRest,
        ),
        // An app answering errors (405, 404, 500) fails at rest: said 2 s into the second
        // window (7 s), not after six (30 s); the first is excused (an app warming up).
        (
            "answered errors in the first window",
            w(2_000, 100, 100, 100),
            0,
            Verdict::Wait,
        ),
        (
            "a first window of answered errors ends",
            w(5_000, 250, 250, 250),
            0,
            Verdict::Next,
        ),
        (
            "answered errors 2 s into the second window",
            w(2_000, 100, 100, 100),
            1,
            Verdict::AtRest,
        ),
        (
            "answered errors at 1 s",
            w(1_000, 50, 50, 50),
            1,
            Verdict::Wait,
        ),
        (
            "a few answered errors",
            w(2_000, 100, 10, 10),
            1,
            Verdict::Wait,
        ),
    ] {
        assert_eq!(steady::judge(&window, 5_000, before), want, "{name}");
    }
}

fn run(action: &'static str, sleep_s: u64, failed: u64, causes: &[(Cause, u64)]) -> ActionRun {
    ActionRun {
        action,
        repetition: 1,
        sleep_s: Some(sleep_s),
        sent: 500,
        failed,
        by_kind: BTreeMap::new(),
        by_moment: BTreeMap::new(),
        by_cause: causes
            .iter()
            .map(|(c, n)| (c.as_str().to_owned(), *n))
            .collect(),
        rollout_s: 7.4,
        waits: Vec::new(),
        failures: Vec::new(),
    }
}

fn point(sleep_s: u64, routing: &[u64]) -> SweepPoint {
    SweepPoint {
        sleep_s,
        failed: routing.to_vec(),
        routing: routing.to_vec(),
        app_close: vec![0; routing.len()],
    }
}

#[test]
fn the_sweep_recommends_the_smallest_sleep_safe_from_there_on_plus_margin() {
    assert_eq!(
        recommend(&[
            point(0, &[9]),
            point(1, &[0, 2]),
            point(2, &[0, 0]),
            point(5, &[0, 0])
        ]),
        Some((2, 3))
    );
    assert_eq!(
        recommend(&[point(10, &[0]), point(0, &[0]), point(5, &[0])]),
        Some((0, 1))
    );
    // A lucky zero below a failing value proves nothing.
    assert_eq!(
        recommend(&[point(0, &[0]), point(1, &[3]), point(4, &[0])]),
        Some((4, 6))
    );
    assert_eq!(recommend(&[point(0, &[1]), point(10, &[2])]), None);
    assert_eq!(recommend(&[]), None);
}

#[test]
fn failures_no_sleep_can_fix_do_not_raise_the_recommendation() {
    // The issue's sweep 0,1,2,5: the 2 s step lost one request to a kept-alive connection the
    // app reset at its SIGTERM, and a new pod's readiness lost two at 1 s. Neither is routing.
    let runs = [
        run("restart", 5, 0, &[]),
        run("restart", 5, 0, &[]),
        run("restart", 2, 1, &[(Cause::AppClose, 1)]),
        run("restart", 2, 0, &[]),
        run("restart", 1, 2, &[(Cause::Readiness, 2)]),
        run("restart", 1, 0, &[]),
        run(
            "restart",
            0,
            9,
            &[(Cause::Routing, 8), (Cause::AppClose, 1)],
        ),
        run("restart", 0, 7, &[(Cause::Routing, 7)]),
        // The restore replaces the 0 s pods: one more run of that value.
        run("restore", 0, 6, &[(Cause::Routing, 6)]),
    ];
    let points = sweep_points(&runs);
    assert_eq!(
        points.iter().map(|p| p.sleep_s).collect::<Vec<_>>(),
        [5, 2, 1, 0]
    );
    assert_eq!(points[1].failed, [1, 0]);
    assert_eq!(points[1].routing, [0, 0]);
    assert_eq!(points[1].app_close, [1, 0]);
    assert_eq!(points[3].routing, [8, 7, 6], "the restore counts for 0 s");
    assert_eq!(recommend(&points), Some((1, 2)), "not 5 s + margin");
}

#[test]
fn the_report_shows_runs_carried_fields_sweep_and_advice() {
    let mut first = run(
        "restart",
        2,
        3,
        &[(Cause::AppClose, 2), (Cause::Readiness, 1)],
    );
    first.by_kind = BTreeMap::from([("eof".to_owned(), 2), ("refused".to_owned(), 1)]);
    first.by_moment = BTreeMap::from([("sigterm".to_owned(), 3)]);
    first.failures = vec![Timed {
        after_action_ms: 5100,
        kind: "eof (reused)".into(),
        moment: Moment::Sigterm,
    }];
    let runs = vec![first, run("restart", 0, 0, &[]), run("restore", 0, 0, &[])];
    let sweep = sweep_points(&runs);
    let report = Report {
        target: "deployment/web".into(),
        namespace: "staging".into(),
        service: "web".into(),
        load: "10.0.0.7:80".into(),
        path: "/ready".into(),
        method: "GET".into(),
        keepalive: true,
        rate: 50,
        runs,
        carried: Carried {
            prestop: Some(r#"{"sleep":{"seconds":5}}"#.into()),
            grace_s: 35,
            readiness: Readiness::Own,
            ledger: None,
        },
        advice: advice::advise(
            "staging",
            &Observed {
                app_close: 2,
                ..seen()
            },
        ),
        recommended_sleep_s: recommend(&sweep).map(|(_, set)| set),
        sweep,
        restored: Some("zerodrop.dev/prestop-sleep removed again; converged".into()),
    };
    let table = report.table();
    for says in [
        "deployment/web in staging: GET http://10.0.0.7:80/ready at 50 req/s through Service web, keep-alive on",
        "restart         1     2s      500       3       7.4s  eof 2, refused 1, at sigterm 3",
        "restore         1     0s      500       0       7.4s  -",
        r#"preStop {"sleep":{"seconds":5}}, grace 35s, readiness Own"#,
        "    2s  failed [3]  routing [0]  app-close [2]",
        "    0s  failed [0, 0]  routing [0, 0]  app-close [0, 0]",
        "smallest sleep with no routing failure: 0s; set zerodrop.dev/prestop-sleep: \"1s\"",
        "one run for a value: a single stray failure",
        "put back: zerodrop.dev/prestop-sleep removed again; converged",
        "result: 3 of 1500 requests failed",
        "advice (app-drain):",
    ] {
        assert!(table.contains(says), "missing {says:?} in\n{table}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["runs"][0]["failures"][0]["moment"], "sigterm");
    assert_eq!(json["runs"][0]["by_cause"]["app-close"], 2);
    assert_eq!(json["sweep"][0]["app_close"], serde_json::json!([2]));
    assert_eq!(json["recommended_sleep_s"], 1);
    assert_eq!(report.failed(), 3);
}
