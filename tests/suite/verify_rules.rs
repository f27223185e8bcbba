//! `zerodrop verify`'s pure parts, table-driven: the target argument and preflight's decisions
//! (the advice, the sweep and the report: verify_advice.rs). Against a real cluster: experiments/proof's
//! verify run.

use zerodrop::verify::preflight::{Facts, Kind, Refusal, Service, Target, Wanted, decide};

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

#[test]
fn a_sweep_repeats_each_value_twice_unless_told() {
    use clap::Parser as _;
    let verify = |args: &[&str]| match zerodrop::cli::Cli::parse_from(
        ["zerodrop", "verify", "deployment/web"].iter().chain(args),
    )
    .command
    {
        zerodrop::cli::Command::Verify(v) => v.repetitions(),
        _ => unreachable!(),
    };
    assert_eq!(verify(&[]), 1);
    assert_eq!(verify(&["--sweep-sleep", "0,2"]), 2);
    assert_eq!(verify(&["--sweep-sleep", "0,2", "--repeat", "1"]), 1);
    assert_eq!(verify(&["--repeat", "3"]), 3);
}

#[test]
fn drain_waits_are_shown_with_how_they_ended() {
    use zerodrop::verify::advice::DrainLine;
    let line = |waited_ms, ending: &str| DrainLine {
        waited_ms,
        ending: ending.into(),
        new_connections: 0,
        busy_connections: 0,
    };
    let shown = zerodrop::verify::report::waits(&[
        line(3100, "quiet"),
        line(2000, "quiet"),
        line(30000, "max"),
    ]);
    assert_eq!(shown, "drain waits 2.0-30.0s (max 1, quiet 2)");
}
