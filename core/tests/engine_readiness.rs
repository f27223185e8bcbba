//! The readiness rules, table-driven: a safe HTTP probe from policy or from the container's own
//! liveness/startup probe, the TCP-probe upgrade, and what is left alone.

// A failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use serde_json::{Value, json};
use zerodrop_core::findings::Code;

#[test]
fn readiness_rules() {
    let probe = |handler: Value| {
        let mut c = web();
        c["readinessProbe"] = handler;
        c
    };
    let path = json!({ "zerodrop.dev/readiness-path": "/ready" });
    // (annotations, container, expected readinessProbe, expected finding)
    let cases = [
        (
            json!({}),
            probe(json!({ "httpGet": { "path": "/h", "port": 8080 } })),
            json!({ "httpGet": { "path": "/h", "port": 8080 } }),
            None,
        ),
        (
            path.clone(),
            probe(json!({ "exec": { "command": ["true"] } })),
            json!({ "exec": { "command": ["true"] } }),
            None,
        ),
        (
            json!({}),
            probe(json!({ "tcpSocket": { "port": 8080 }, "periodSeconds": 2 })),
            json!({ "tcpSocket": { "port": 8080 }, "periodSeconds": 2 }),
            Some(Code::TcpReadiness),
        ),
        (
            path.clone(),
            probe(json!({ "tcpSocket": { "port": "http" }, "periodSeconds": 2 })),
            json!({ "httpGet": { "path": "/ready", "port": "http", "scheme": "HTTP" }, "periodSeconds": 2 }),
            None,
        ),
        (
            path.clone(),
            web(),
            json!({ "httpGet": { "path": "/ready", "port": 8080, "scheme": "HTTP" }, "periodSeconds": 5 }),
            None,
        ),
        (
            json!({ "zerodrop.dev/readiness-path": "/r", "zerodrop.dev/readiness-port": "9090", "zerodrop.dev/readiness-scheme": "HTTPS" }),
            web(),
            json!({ "httpGet": { "path": "/r", "port": 9090, "scheme": "HTTPS" }, "periodSeconds": 5 }),
            None,
        ),
        (
            json!({}),
            {
                let mut c = web();
                c["livenessProbe"] = json!({ "httpGet": { "path": "/live", "port": 8080 }, "initialDelaySeconds": 30 });
                c
            },
            json!({ "httpGet": { "path": "/live", "port": 8080 }, "periodSeconds": 5 }),
            None,
        ),
        (
            json!({}),
            {
                let mut c = web();
                c["startupProbe"] = json!({ "grpc": { "port": 9000 } });
                c
            },
            json!({ "grpc": { "port": 9000 }, "periodSeconds": 5 }),
            None,
        ),
        (
            json!({}),
            {
                let mut c = web();
                c["livenessProbe"] = json!({ "exec": { "command": ["x"] } });
                c
            },
            Value::Null,
            Some(Code::NoReadiness),
        ),
        (
            json!({}),
            json!({ "name": "web", "image": "w" }),
            Value::Null,
            None,
        ),
        (
            path.clone(),
            json!({ "name": "web", "image": "w", "ports": [{ "containerPort": 80 }, { "containerPort": 81 }] }),
            Value::Null,
            Some(Code::AmbiguousReadinessPort),
        ),
        (
            path.clone(),
            json!({ "name": "web", "image": "w", "ports": [{ "containerPort": 53, "protocol": "UDP" }, { "containerPort": 81 }] }),
            json!({ "httpGet": { "path": "/ready", "port": 81, "scheme": "HTTP" }, "periodSeconds": 5 }),
            None,
        ),
        (
            path.clone(),
            json!({ "name": "web", "image": "w", "ports": [{ "containerPort": 80, "name": "http-api" }, { "containerPort": 9100, "name": "metrics" }] }),
            json!({ "httpGet": { "path": "/ready", "port": 80, "scheme": "HTTP" }, "periodSeconds": 5 }),
            None,
        ),
        (
            json!({ "zerodrop.dev/readiness-path": "/r", "zerodrop.dev/readiness-port": "admin" }),
            web(),
            Value::Null,
            Some(Code::UnknownReadinessPort),
        ),
        (
            path.clone(),
            json!({ "name": "web", "image": "w" }),
            Value::Null,
            Some(Code::AmbiguousReadinessPort),
        ),
    ];
    for (i, (annotations, container, want, finding)) in cases.into_iter().enumerate() {
        let (d, p) = run(&pod(annotations, json!([container])));
        assert_eq!(
            p["spec"]["containers"][0]["readinessProbe"], want,
            "case {i}"
        );
        let readiness_codes: Vec<Code> = codes(&d)
            .into_iter()
            .filter(|c| c.as_str().starts_with("ZD2"))
            .collect();
        assert_eq!(
            readiness_codes,
            finding.into_iter().collect::<Vec<_>>(),
            "case {i}"
        );
    }
}
