//! The settings' names, formats and layering (core/src/policy/settings.rs).

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use zerodrop_core::policy::*;

fn parse(s: Setting, raw: &str) -> Result<Partial, InvalidValue> {
    let mut p = Partial::default();
    s.parse_into(raw, &mut p).map(|()| p)
}

#[test]
fn every_setting_round_trips_its_name() {
    for s in Setting::ALL {
        assert_eq!(Setting::from_name(s.name()), Some(s));
    }
    assert_eq!(Setting::from_name("prestop_sleep"), None);
}

#[test]
fn good_values_parse() {
    assert_eq!(
        parse(Setting::Mode, "audit").unwrap().mode,
        Some(Mode::Audit)
    );
    assert_eq!(
        parse(Setting::PrestopSleep, "1m").unwrap().prestop_sleep,
        Some(60)
    );
    assert_eq!(
        parse(Setting::DrainTimeout, "0").unwrap().drain_timeout,
        Some(0)
    );
    assert_eq!(
        parse(Setting::ReadinessPath, "/ready")
            .unwrap()
            .readiness_path
            .as_deref(),
        Some("/ready")
    );
    assert_eq!(
        parse(Setting::ReadinessPort, "8080")
            .unwrap()
            .readiness_port,
        Some(PortRef::Number(8080))
    );
    assert_eq!(
        parse(Setting::ReadinessPort, "http-admin")
            .unwrap()
            .readiness_port,
        Some(PortRef::Name("http-admin".into()))
    );
    assert_eq!(
        parse(Setting::ReadinessScheme, "HTTPS")
            .unwrap()
            .readiness_scheme,
        Some(Scheme::Https)
    );
    assert_eq!(
        parse(Setting::PrestopAction, "exec")
            .unwrap()
            .prestop_action,
        Some(PrestopAction::Exec)
    );
    assert_eq!(
        parse(Setting::SkipContainers, "a, b,,c")
            .unwrap()
            .skip_containers,
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        parse(Setting::ShellExec, "true").unwrap().shell_exec,
        Some(true)
    );
    assert_eq!(
        parse(Setting::Drain, "adaptive").unwrap().drain,
        Some(DrainMode::Adaptive)
    );
    assert_eq!(parse(Setting::DrainMin, "3s").unwrap().drain_min, Some(3));
    assert_eq!(
        parse(Setting::DrainQuiet, "5").unwrap().drain_quiet,
        Some(5)
    );
    assert_eq!(parse(Setting::DrainMax, "2m").unwrap().drain_max, Some(120));
    assert_eq!(
        parse(Setting::DrainCount, "connections")
            .unwrap()
            .drain_count,
        Some(DrainCount::Connections)
    );
}

#[test]
fn the_drain_is_per_container_and_its_bounds_are_pod_wide() {
    assert!(Setting::Drain.per_container());
    for s in [
        Setting::DrainMin,
        Setting::DrainQuiet,
        Setting::DrainMax,
        Setting::DrainCount,
    ] {
        assert!(!s.per_container(), "{}", s.name());
    }
    let d = Settings::default();
    assert_eq!(
        (
            d.drain,
            d.drain_min,
            d.drain_quiet,
            d.drain_max,
            d.drain_count
        ),
        (DrainMode::Sleep, 1, 2, 30, DrainCount::Requests)
    );
}

#[test]
fn bad_values_are_refused() {
    let cases = [
        (Setting::Mode, "Enforce"),
        (Setting::Mode, "on"),
        (Setting::PrestopSleep, "banana"),
        (Setting::PrestopSleep, "-1"),
        (Setting::DrainTimeout, "1.5s"),
        (Setting::ReadinessPath, "healthz"),
        (Setting::ReadinessPath, "/a b"),
        (Setting::ReadinessPort, "0"),
        (Setting::ReadinessPort, "70000"),
        (Setting::ReadinessPort, "HTTP"),
        (Setting::ReadinessPort, "a-very-long-port-name"),
        (Setting::ReadinessScheme, "ftp"),
        (Setting::PrestopAction, "kill"),
        (Setting::SkipContainers, "Bad_Name"),
        (Setting::ShellExec, "yes"),
        (Setting::Drain, "Adaptive"),
        (Setting::DrainMin, "0"),
        (Setting::DrainMax, "soon"),
        (Setting::DrainQuiet, "0s"),
        (Setting::DrainCount, "bytes"),
    ];
    for (s, raw) in cases {
        assert!(
            parse(s, raw).is_err(),
            "{} = {raw:?} should be refused",
            s.name()
        );
    }
}

#[test]
fn later_layers_win_and_unset_fields_fall_through() {
    let mut s = Settings::default();
    let cluster = Partial {
        prestop_sleep: Some(10),
        drain_timeout: Some(40),
        ..Default::default()
    };
    let pod = Partial {
        prestop_sleep: Some(3),
        ..Default::default()
    };
    s.apply(&cluster);
    s.apply(&pod);
    assert_eq!(
        (s.prestop_sleep, s.drain_timeout, s.mode),
        (3, 40, Mode::Enforce)
    );
}
