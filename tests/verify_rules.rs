//! `zerodrop verify`'s pure parts, table-driven: the target argument, preflight's decisions,
//! where a failure falls in a rollout, the advice rules, the sweep's recommendation and the
//! report. (Against a real cluster: tests/node's verify run.)

use std::collections::BTreeMap;
use zerodrop::verify::advice::{self, Moment, Observed, PodEvents, Readiness};
use zerodrop::verify::preflight::{Facts, Kind, Refusal, Service, Target, Wanted, decide};
use zerodrop::verify::report::{ActionRun, Carried, Report, SweepPoint, Timed, recommend};

#[test]
fn targets_are_kubectl_spellings_of_a_deployment_or_statefulset() {
    for (arg, kind, name) in [
        ("deployment/web", Kind::Deployment, "web"),
        ("deploy/web", Kind::Deployment, "web"),
        ("deployment.apps/web-1", Kind::Deployment, "web-1"),
        ("statefulset/db", Kind::StatefulSet, "db"),
        ("sts/db.v2", Kind::StatefulSet, "db.v2"),
    ] {
        let t: Target = arg.parse().unwrap();
        assert_eq!((t.kind, t.name.as_str()), (kind, name), "{arg}");
    }
    for (arg, says) in [
        ("web", "expected deployment/NAME"),
        ("daemonset/x", "verify rolls a deployment or a statefulset"),
        ("deployment/", "is not a Kubernetes object name"),
        ("deployment/Web", "is not a Kubernetes object name"),
    ] {
        let err = arg.parse::<Target>().unwrap_err();
        assert!(err.contains(says), "{arg}: {err}");
    }
}

fn svc(name: &str, ip: Option<&str>, ports: &[u16]) -> Service {
    Service {
        name: name.into(),
        cluster_ip: ip.map(Into::into),
        ports: ports.iter().map(|p| (*p, "http".to_owned())).collect(),
    }
}

fn healthy() -> Facts {
    Facts {
        namespace: "staging".into(),
        zerodrop_namespace: Some("zerodrop-system".into()),
        replicas: Some(3),
        ready_replicas: 3,
        services: vec![svc("web", Some("10.0.0.7"), &[80])],
        readiness_path: Some("/ready".into()),
        ..Facts::default()
    }
}

#[test]
fn preflight_sends_through_the_one_service_to_the_readiness_path() {
    let t: Target = "deployment/web".parse().unwrap();
    let chosen = decide(&t, &healthy(), &Wanted::default()).unwrap();
    assert_eq!(
        (
            chosen.service.as_str(),
            chosen.target.as_str(),
            chosen.path.as_str()
        ),
        ("web", "10.0.0.7:80", "/ready")
    );
    let mut f = healthy();
    f.readiness_path = None;
    f.services = vec![svc("web", Some("fd00::7"), &[80, 9090])];
    let wanted = Wanted {
        port: Some(9090),
        path: Some("/api".into()),
        ..Wanted::default()
    };
    let chosen = decide(&t, &f, &wanted).unwrap();
    assert_eq!(
        (chosen.target.as_str(), chosen.path.as_str()),
        ("[fd00::7]:9090", "/api")
    );
    f.services = vec![svc("web", Some("10.0.0.7"), &[80])];
    assert_eq!(decide(&t, &f, &Wanted::default()).unwrap().path, "/");
}

#[test]
fn preflight_refuses_with_the_reason_and_what_to_do() {
    let t: Target = "deployment/web".parse().unwrap();
    type Case = (&'static str, fn(&mut Facts, &mut Wanted), &'static str);
    let cases: Vec<Case> = vec![
        (
            "kube-system",
            |f, _| f.namespace = "kube-system".into(),
            "never rolls workloads in kube-system",
        ),
        (
            "zerodrop's own",
            |f, _| f.namespace = "zerodrop-system".into(),
            "zerodrop's own",
        ),
        (
            "rbac",
            |f, _| f.denied = vec![("patch".into(), "deployments in staging".into())],
            "missing permission: patch deployments in staging",
        ),
        (
            "absent",
            |f, _| f.replicas = None,
            "deployment/web not found in namespace staging",
        ),
        ("rolling", |f, _| f.rolling = true, "is rolling out now"),
        (
            "one replica",
            |f, _| f.ready_replicas = 1,
            "has 1 ready replica(s)",
        ),
        (
            "hpa",
            |f, w| {
                f.autoscalers = vec!["web".into()];
                w.scale_down = true;
            },
            "HorizontalPodAutoscaler web scales deployment/web",
        ),
        (
            "no service",
            |f, _| f.services.clear(),
            "no Service selects the pods",
        ),
        (
            "two services",
            |f, _| f.services.push(svc("web-canary", Some("10.0.0.8"), &[80])),
            "2 Services select the pods of deployment/web: web, web-canary; pick one with --service",
        ),
        (
            "unknown service",
            |f, w| {
                w.service = Some("api".into());
                let _ = f;
            },
            "Service api does not select the pods of deployment/web (those that do: web)",
        ),
        (
            "headless",
            |f, _| f.services = vec![svc("web", None, &[80])],
            "is headless",
        ),
        (
            "unknown port",
            |_, w| w.port = Some(81),
            "Service web has no port 81 (it has 80)",
        ),
        (
            "two ports",
            |f, _| f.services = vec![svc("web", Some("10.0.0.7"), &[80, 443])],
            "has 2 ports (80, 443); pick one with --port",
        ),
    ];
    for (name, change, says) in cases {
        let (mut f, mut w) = (healthy(), Wanted::default());
        change(&mut f, &mut w);
        let err = decide(&t, &f, &w).unwrap_err();
        assert!(err.to_string().contains(says), "{name}: {err}");
    }
    // An autoscaler matters only to a scale-down.
    let mut f = healthy();
    f.autoscalers = vec!["web".into()];
    assert!(decide(&t, &f, &Wanted::default()).is_ok());
    assert!(matches!(
        decide(
            &t,
            &f,
            &Wanted {
                scale_down: true,
                ..Wanted::default()
            }
        ),
        Err(Refusal::Autoscaled(..))
    ));
}

fn old(name: &str, deleted: u64, sleep_ms: u64) -> PodEvents {
    PodEvents {
        name: name.into(),
        deleted_ms: Some(deleted),
        prestop_sleep_ms: sleep_ms,
        ready_ms: None,
    }
}

fn new(name: &str, ready: u64) -> PodEvents {
    PodEvents {
        name: name.into(),
        deleted_ms: None,
        prestop_sleep_ms: 0,
        ready_ms: Some(ready),
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

fn seen() -> Observed {
    Observed {
        mode: Some("enforce".into()),
        prestop: true,
        prestop_sleep_s: 5,
        readiness: Readiness::Own,
        escaped: 0,
        shell: Vec::new(),
        at_start: 0,
        in_sleep: 0,
        at_sigterm: 0,
        at_sigterm_reused: 0,
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
                o.in_sleep = 9;
            },
            &["label-namespace"],
            "kubectl label namespace staging zerodrop.dev/mode=enforce",
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
            "2 pod(s) in this enforce namespace carry no zerodrop ledger",
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
            |o| o.in_sleep = 3,
            &["prestop-sleep"],
            "longer than the 5s preStop sleep",
        ),
        (
            "keep-alive close",
            |o| {
                o.at_sigterm = 3;
                o.at_sigterm_reused = 2;
            },
            &["app-drain"],
            "answer `Connection: close`",
        ),
        (
            "exit in flight",
            |o| o.at_sigterm = 3,
            &["app-drain"],
            "finish what is in flight",
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

fn point(sleep_s: u64, failed: &[u64]) -> SweepPoint {
    SweepPoint {
        sleep_s,
        failed: failed.to_vec(),
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
fn the_report_shows_runs_carried_fields_sweep_and_advice() {
    let run = ActionRun {
        action: "restart",
        repetition: 1,
        sleep_s: Some(2),
        sent: 500,
        failed: 3,
        by_kind: BTreeMap::from([("eof".to_owned(), 2), ("refused".to_owned(), 1)]),
        by_moment: BTreeMap::from([("sigterm".to_owned(), 3)]),
        rollout_s: 7.4,
        failures: vec![Timed {
            after_action_ms: 5100,
            kind: "eof (reused)".into(),
            moment: Moment::Sigterm,
        }],
    };
    let report = Report {
        target: "deployment/web".into(),
        namespace: "staging".into(),
        service: "web".into(),
        load: "10.0.0.7:80".into(),
        path: "/ready".into(),
        method: "GET".into(),
        keepalive: true,
        rate: 50,
        runs: vec![run],
        carried: Carried {
            prestop: Some(r#"{"sleep":{"seconds":5}}"#.into()),
            grace_s: 35,
            readiness: Readiness::Own,
            ledger: None,
        },
        advice: advice::advise(
            "staging",
            &Observed {
                at_sigterm: 3,
                at_sigterm_reused: 1,
                ..seen()
            },
        ),
        sweep: vec![point(0, &[3]), point(2, &[0])],
        recommended_sleep_s: Some(3),
    };
    let table = report.table();
    for says in [
        "deployment/web in staging: GET http://10.0.0.7:80/ready at 50 req/s through Service web, keep-alive on",
        "restart         1     2s      500       3       7.4s  eof 2, refused 1, at sigterm 3",
        r#"preStop {"sleep":{"seconds":5}}, grace 35s, readiness Own"#,
        "smallest sleep with no failure: 2s; set zerodrop.dev/prestop-sleep: \"3s\"",
        "result: 3 of 500 requests failed",
        "advice (app-drain):",
    ] {
        assert!(table.contains(says), "missing {says:?} in\n{table}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["runs"][0]["failures"][0]["moment"], "sigterm");
    assert_eq!(json["recommended_sleep_s"], 3);
    assert_eq!(report.failed(), 3);
}
