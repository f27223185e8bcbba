//! Every JSON zerodrop writes, parsed strictly (a key named twice is an error, as in strict
//! parsers): audit's json and sarif, verify's `-o json` report, load's progress lines and
//! summary, and the admission responses.

use std::collections::BTreeMap;
use std::process::Command;
use zerodrop_testkit::router;
use zerodrop_testkit::strict_json::parse;

fn zerodrop(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_zerodrop"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn audit_json_and_sarif_are_strict_json() {
    let mut inputs = vec!["examples/manifests/web.yaml".to_owned()];
    for entry in std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/manifests"
    ))
    .unwrap()
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            inputs.push(path.display().to_string());
        }
    }
    let mut readiness = 0;
    for input in &inputs {
        for format in ["json", "sarif"] {
            let out = zerodrop(&["audit", "-f", input, "-o", format]);
            let parsed = parse(&out).unwrap_or_else(|e| {
                panic!(
                    "audit -f {input} -o {format}: {e}\n{}",
                    String::from_utf8_lossy(&out)
                )
            });
            if format == "json" {
                for w in parsed["workloads"].as_array().unwrap() {
                    readiness += w["changes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|c| c["kind"] == "readiness" && c["detail"].is_string())
                        .count();
                }
            }
        }
    }
    // The case the duplicate key was found in: a readiness change's own text and its description.
    assert!(readiness > 0, "no readiness change among {inputs:?}");
}

#[test]
fn verify_reports_are_strict_json() {
    use zerodrop::verify::advice::{self, Cause, Observed, Readiness};
    use zerodrop::verify::report::{ActionRun, Carried, Report, recommend, sweep_points};
    let runs: Vec<ActionRun> = [
        ("restart", 2, Cause::Routing),
        ("restore", 0, Cause::AppClose),
    ]
    .into_iter()
    .map(|(action, sleep, cause)| ActionRun {
        action,
        repetition: 1,
        sleep_s: Some(sleep),
        sent: 100,
        failed: 1,
        by_kind: BTreeMap::from([("eof".to_owned(), 1)]),
        by_moment: BTreeMap::from([("sigterm".to_owned(), 1)]),
        by_cause: BTreeMap::from([(cause.as_str().to_owned(), 1)]),
        rollout_s: 3.0,
        waits: Vec::new(),
        failures: Vec::new(),
    })
    .collect();
    let observed = Observed {
        mode: Some("enforce".into()),
        installed: Some(true),
        prestop: true,
        prestop_sleep_s: 5,
        readiness: Readiness::None,
        escaped: 1,
        shell: vec!["ZD301 x".into()],
        at_start: 1,
        routing: 1,
        app_close: 1,
        other: 0,
    };
    let sweep = sweep_points(&runs);
    let report = Report {
        target: "deployment/web".into(),
        namespace: "shop".into(),
        service: "web".into(),
        load: "10.0.0.1:80".into(),
        path: "/".into(),
        method: "GET".into(),
        keepalive: true,
        rate: 50,
        carried: Carried {
            prestop: Some("{}".into()),
            grace_s: 30,
            readiness: Readiness::None,
            ledger: Some("{}".into()),
        },
        advice: advice::advise("shop", &observed),
        recommended_sleep_s: recommend(&sweep).map(|(_, s)| s),
        runs,
        sweep,
        restored: Some("back".into()),
    };
    // What `verify -o json` prints.
    let text = serde_json::to_string_pretty(&report).unwrap();
    parse(text.as_bytes()).unwrap();
}

#[test]
fn load_progress_lines_and_summary_are_strict_json() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let out = zerodrop(&[
        "load",
        "--target",
        &closed,
        "--rate",
        "100",
        "--duration",
        "1s",
        "--report-every",
        "300ms",
    ]);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "progress lines and a summary: {text}");
    for line in &lines {
        let v = parse(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("progress").is_some() || v.get("sent").is_some(),
            "{line}"
        );
    }
}

#[tokio::test]
async fn admission_responses_are_strict_json() {
    for fixture in ["pod-create", "pod-create-dry-run", "deployment-create"] {
        let review = router::fixture(fixture);
        let path = if fixture.starts_with("deployment") {
            "/validate"
        } else {
            "/mutate"
        };
        for mode in ["enforce", "audit"] {
            // router::review parses the answer strictly and checks the envelope.
            let response = router::review(router::state(&review, mode), path, &review).await;
            assert_eq!(response["allowed"], true, "{fixture} {mode}");
        }
    }
}
