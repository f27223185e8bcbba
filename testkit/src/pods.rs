//! Generated Pods for property tests (random containers, ports, probes, lifecycles,
//! annotations, grace periods), shared by the engine's property tests and the e2e test that
//! sends them through the real apiserver.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// `drain`: now and then the drain waiter's own port (without it, the draws are what they were
/// before the adaptive drain: the peers' corpus stays the same pods).
fn port(drain: bool) -> impl Strategy<Value = Value> {
    let number = if drain {
        prop_oneof![9 => 1u16..=65535, 1 => Just(9797u16)].boxed()
    } else {
        (1u16..=65535).boxed()
    };
    (
        number,
        prop::option::of(prop::sample::select(vec![
            "http", "http-api", "grpc", "metrics",
        ])),
        any::<bool>(),
    )
        .prop_map(|(n, name, udp)| {
            let mut p = json!({ "containerPort": n });
            if let Some(name) = name {
                p["name"] = json!(name);
            }
            if udp {
                p["protocol"] = json!("UDP");
            }
            p
        })
}

fn probe() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!({ "httpGet": { "path": "/h", "port": 8080 } })),
        Just(json!({ "tcpSocket": { "port": 8080 }, "periodSeconds": 3 })),
        Just(json!({ "grpc": { "port": 9000 } })),
        Just(json!({ "exec": { "command": ["check"] } })),
    ])
}

fn lifecycle() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!({ "preStop": { "sleep": { "seconds": 3 } } })),
        Just(json!({ "preStop": { "exec": { "command": ["sleep", "7"] } } })),
        Just(json!({ "postStart": { "exec": { "command": ["true"] } } })),
        Just(json!({})),
    ])
}

fn command() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!(["sh", "-c", "node server.js"])),
        Just(json!(["/bin/bash", "-c", "migrate && serve"])),
        Just(json!(["/start.sh"])),
        Just(json!(["/app"])),
    ])
}

prop_compose! {
    fn container(i: usize, drain: bool)(
        ports in prop::collection::vec(port(drain), 0..3),
        readiness in probe(),
        liveness in probe(),
        lifecycle in lifecycle(),
        command in command(),
        future in any::<bool>(),
    ) -> Value {
        let mut c = json!({ "name": format!("c{i}"), "image": "img" });
        // Kubernetes rejects duplicate container ports; keep the generated ones unique.
        let mut seen = std::collections::BTreeSet::new();
        let ports: Vec<Value> = ports.into_iter().filter(|p| seen.insert(p["containerPort"].as_u64())).collect();
        if !ports.is_empty() { c["ports"] = json!(ports); }
        if let Some(p) = readiness { c["readinessProbe"] = p; }
        if let Some(p) = liveness { c["livenessProbe"] = p; }
        if let Some(l) = lifecycle { c["lifecycle"] = l; }
        if let Some(cmd) = command { c["command"] = cmd; }
        if future { c["fieldFromKubernetes2030"] = json!({ "x": i }); }
        c
    }
}

fn annotations(drain: bool) -> impl Strategy<Value = Map<String, Value>> {
    let mut keys = vec![
        "zerodrop.dev/prestop-sleep",
        "zerodrop.dev/drain-timeout",
        "zerodrop.dev/readiness-path",
        "zerodrop.dev/readiness-port",
        "zerodrop.dev/prestop-action",
        "zerodrop.dev/shell-exec",
        "zerodrop.dev/mode",
        "zerodrop.dev/prestop-sleep.c0",
        "zerodrop.dev/drain-timeout.c1",
        "a~b/c",
        "example.com/x",
    ];
    let mut values = vec![
        "0", "3", "45s", "1m30s", "banana", "/ready", "http", "8080", "exec", "sleep", "true",
        "enforce", "audit", "-1",
    ];
    if drain {
        keys.extend([
            "zerodrop.dev/drain",
            "zerodrop.dev/drain.c0",
            "zerodrop.dev/drain-max",
            "zerodrop.dev/drain-min",
            "zerodrop.dev/drain-count",
        ]);
        values.extend(["adaptive", "adaptive", "connections"]);
    }
    let key = prop::sample::select(keys);
    let value = prop::sample::select(values);
    prop::collection::btree_map(key, value, 0..6).prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect()
    })
}

/// The pods of the peers' corpus (fixed seed: the same pods as before the adaptive drain).
pub fn pod() -> impl Strategy<Value = Value> {
    pod_with(false)
}

/// With `drain`, also the adaptive drain's annotations, its port and init containers.
pub fn pod_any() -> impl Strategy<Value = Value> {
    pod_with(true)
}

prop_compose! {
    fn pod_with(drain: bool)(
        n in 1usize..4,
        annotations in annotations(drain),
        grace in prop::option::of(0i64..200),
        init in if drain { any::<bool>().boxed() } else { Just(false).boxed() },
    )(
        containers in (0..n).map(|i| container(i, drain)).collect::<Vec<_>>(),
        annotations in Just(annotations),
        grace in Just(grace),
        init in Just(init),
    ) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "namespace": "ns", "annotations": annotations },
            "spec": { "containers": containers }
        });
        if let Some(g) = grace { p["spec"]["terminationGracePeriodSeconds"] = json!(g); }
        if init { p["spec"]["initContainers"] = json!([{ "name": "setup", "image": "img" }]); }
        p
    }
}
