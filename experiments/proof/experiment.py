#!/usr/bin/env python3
"""The node experiment: rolling restarts and scale-downs under steady load, failed requests
counted, with and without zerodrop. Needs the node up (experiments/proof/node.sh up) with zerodrop
installed by its chart (--install does it).

usage: experiment.py [--repeat N] [--rate R] [--only CELL,...] [--sweep] [--smoke]
                     [--json OUT] [--write docs/proof.md]
"""
import argparse
import json
import re
import subprocess
import sys
import time

import report
from cluster import apply, install_zerodrop, kubectl, pods, settle, shape, tool

REPLICAS, SCALED = 4, 2

# What each app does; the args are the container's, the shell form is what users write.
APPS = {
    "exit": {"args": ["--on-sigterm", "exit"],
             "about": "exits at once on SIGTERM (most apps)"},
    "drain": {"args": ["--on-sigterm", "drain"],
              "about": "stops accepting and drains in-flight requests on SIGTERM"},
    "slow": {"args": ["--on-sigterm", "drain", "--ready-after", "5"], "tcp_probe": True,
             "about": "listens at once, answers 503 for 5 s; TCP readiness probe"},
    "shell": {"command": ["sh", "-c", "/rollout-app --on-sigterm drain"],
              "about": "`sh -c` without exec: PID 1 is dash, the app never sees SIGTERM"},
    # The same, written where it usually is: the image's shell-form CMD (no command in the
    # pod spec), pulled by containerd from the node's registry and inspected by zerodrop.
    "image-shell": {"image": "198.18.0.1:5000/rollout-app-shell:1",
                    "about": "`CMD /rollout-app ...` in the image (dash): PID 1 from the image"},
}
# The webhook inspects images only for these apps' cells (the others' images are local).
INSPECTED = {"image-shell"}
# (app, scenario, namespace mode label, pod template annotations)
CELLS = [
    ("exit", "none", None, {}),
    ("exit", "audit", "audit", {}),
    ("exit", "enforce", "enforce", {}),
    ("drain", "none", None, {}),
    ("drain", "audit", "audit", {}),
    ("drain", "enforce", "enforce", {}),
    ("slow", "none", None, {}),
    ("slow", "audit", "audit", {}),
    ("slow", "enforce", "enforce", {}),
    ("slow", "enforce+readiness-path", "enforce", {"zerodrop.dev/readiness-path": "/ready"}),
    ("shell", "none", None, {}),
    ("shell", "audit", "audit", {}),
    ("shell", "enforce", "enforce", {}),
    ("shell", "enforce+shell-exec", "enforce", {"zerodrop.dev/shell-exec": "true"}),
    ("image-shell", "none", None, {}),
    ("image-shell", "enforce", "enforce", {}),
    ("image-shell", "enforce+shell-exec", "enforce", {"zerodrop.dev/shell-exec": "true"}),
]
SWEEP = [0, 1, 2, 5, 10]


def manifests(ns, app, mode, annotations, ns_annotations=None):
    spec = APPS[app]
    container = {"name": "app", "image": spec.get("image", "zerodrop.local/rollout-app:1"),
                 "imagePullPolicy": "IfNotPresent" if "image" in spec else "Never",
                 "ports": [{"name": "http", "containerPort": 8080}]}
    if "command" in spec:
        container["command"] = spec["command"]
    elif "args" in spec:
        container["args"] = spec["args"]
    if spec.get("tcp_probe"):
        container["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    labels = {"zerodrop.dev/mode": mode} if mode else {}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": labels, "annotations": ns_annotations or {}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": ns},
         "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "app"}},
                  # Kubernetes' defaults, what most Deployments run with.
                  "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                  "template": {"metadata": {"labels": {"app": "app"}, "annotations": annotations},
                               "spec": {"automountServiceAccountToken": False,
                                        "enableServiceLinks": False,
                                        "containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": ns},
         "spec": {"selector": {"app": "app"}, "ports": [{"port": 80, "targetPort": "http"}]}},
    ]


class Load:
    """`zerodrop load` against the Service VIP, a new connection per request; stopping it
    (closing stdin) gives the tally."""

    def __init__(self, vip, rate):
        self.proc = subprocess.Popen([tool("zerodrop"), "load", "--target", f"{vip}:80", "--rate", str(rate),
                                      "--keepalive=false", "--timeout", "2s", "--until-stdin-closes"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self):
        out, _ = self.proc.communicate(timeout=30)  # closes stdin first
        return json.loads(out)


def phase(ns, vip, rate, action, want, replaces=False):
    """Runs one disruptive action under load; returns the tally and the seconds until the
    Deployment converged (old pods gone: with `replaces`, every pod there was before)."""
    # New pods of the slow app answer 503 for 5 s after they are "ready" by their TCP probe;
    # that belongs to the action that made them, not to the next one.
    time.sleep(6)
    load = Load(vip, rate)
    time.sleep(2)
    # A rollout restart returns before the controller acts: until then the old pods alone
    # look settled.
    before = {name for name, _, _ in pods(ns)} if replaces else set()
    started = time.time()
    action()
    settle(ns, want, replaced=before)
    took = time.time() - started
    time.sleep(2)
    tally = load.stop()
    return tally, took


def run_cell(app, scenario, mode, annotations, repeat, rate, tag="", ns_annotations=None):
    ns = re.sub(r"[^a-z0-9-]", "-", f"x-{app}-{scenario}{tag}")[:60].strip("-")
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    # Namespace and workloads in one apply, as `kubectl apply -f dir/` and Helm do: the first
    # pods reach zerodrop before its namespace watch has the namespace (docs/proof.md).
    items = manifests(ns, app, mode, annotations, ns_annotations)
    warnings = []
    apply(items, warnings)
    settle(ns, REPLICAS)
    vip = kubectl("-n", ns, "get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}")
    time.sleep(3)  # kube-proxy programs the new Service
    runs = []
    for i in range(repeat):
        restart, t_restart = phase(ns, vip, rate, lambda: kubectl(
            "-n", ns, "rollout", "restart", "deploy/app"), REPLICAS, replaces=True)
        scale, t_scale = phase(ns, vip, rate, lambda: kubectl(
            "-n", ns, "scale", "deploy/app", f"--replicas={SCALED}"), SCALED)
        kubectl("-n", ns, "scale", "deploy/app", f"--replicas={REPLICAS}")
        settle(ns, REPLICAS)
        runs.append({"restart": {**brief(restart), "seconds": round(t_restart, 1)},
                     "scale_down": {**brief(scale), "seconds": round(t_scale, 1)}})
        print(f"  {app:6} {scenario:24}{tag} run {i + 1}: restart {restart['failed']} failed "
              f"{restart['by_kind']} {t_restart:.1f}s, scale-down {scale['failed']} failed "
              f"{scale['by_kind']} {t_scale:.1f}s", file=sys.stderr)
    pod = json.loads(kubectl("-n", ns, "get", "pods", "-o", "json"))["items"][0]
    kubectl("delete", "namespace", ns, "--wait=false")
    return {"app": app, "scenario": scenario, "runs": runs, "pod": shape(pod),
            "warnings": [w for w in warnings if "zerodrop" in w]}


def brief(tally):
    # Failure times are ms since the load started; the action came 2 s after that.
    return {"sent": tally["sent"], "failed": tally["failed"], "by_kind": tally["by_kind"],
            "failure_ms": [f["at_ms"] - 2000 for f in tally["failures"][:50]]}


def table(results, sweep):
    lines = ["| app | zerodrop | restarts: failed / sent | scale-downs: failed / sent | failure rate "
             "| restart converged (s) | what zerodrop set |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rs, ss = [x["restart"] for x in r["runs"]], [x["scale_down"] for x in r["runs"]]
        failed = sum(x["failed"] for x in rs + ss)
        sent = sum(x["sent"] for x in rs + ss)
        secs = sorted(x["seconds"] for x in rs)
        per_run = " + ".join(str(x["failed"]) for x in rs)
        per_scale = " + ".join(str(x["failed"]) for x in ss)
        lines.append(f"| {r['app']} | {r['scenario']} | {per_run} / {sum(x['sent'] for x in rs)} "
                     f"| {per_scale} / {sum(x['sent'] for x in ss)} "
                     f"| {100 * failed / max(sent, 1):.2f}% | {secs[len(secs) // 2]} "
                     f"| {changes(r['pod'], r.get('warnings', []))} |")
    out = "\n".join(lines)
    if sweep:
        out += "\n\n| prestop-sleep (drain app, enforce) | failed / sent (restarts + scale-downs) |\n| --- | --- |\n"
        out += "\n".join(
            f"| {s['sleep']}s | {sum(x[k]['failed'] for x in s['runs'] for k in ('restart', 'scale_down'))}"
            f" / {sum(x[k]['sent'] for x in s['runs'] for k in ('restart', 'scale_down'))} |" for s in sweep)
    return out


def changes(pod, warnings=()):
    parts = []
    if any("stays PID 1" in w for w in warnings):
        parts.append("warned: the image's shell stays PID 1")
    if pod["preStop"]:
        parts.append("preStop " + json.dumps(pod["preStop"], separators=(",", ":")))
    if pod["readiness"] and "httpGet" in pod["readiness"]:
        parts.append("readiness httpGet " + pod["readiness"]["httpGet"].get("path", ""))
    if pod["command"] and "exec " in " ".join(pod["command"]):
        parts.append("`exec` in sh -c")
    if pod["grace"] not in (None, 30):
        parts.append(f"grace {pod['grace']}s")
    return ", ".join(parts) or "nothing"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--only", default="", help="comma-separated app/scenario, e.g. exit/none")
    p.add_argument("--sweep", action="store_true", help="also sweep prestop-sleep")
    p.add_argument("--smoke", action="store_true",
                   help="CI: exit app without and with zerodrop, once; fails unless enforce loses nothing")
    p.add_argument("--json")
    p.add_argument("--write")
    a = p.parse_args()
    install_zerodrop()

    cells = CELLS
    if a.smoke:
        a.repeat, cells = 1, [c for c in CELLS if c[0] == "exit" and c[1] in ("none", "enforce")]
    elif a.only:
        wanted = set(a.only.split(","))
        cells = [c for c in CELLS if f"{c[0]}/{c[1]}" in wanted]
    results, inspecting = [], False
    for app, sc, mode, ann in sorted(cells, key=lambda c: c[0] in INSPECTED):
        if (app in INSPECTED) != inspecting:
            inspecting = app in INSPECTED
            install_zerodrop(inspect=inspecting)
        results.append(run_cell(app, sc, mode, ann, a.repeat, a.rate))
    sweep = []
    if a.sweep:
        for s in SWEEP:
            r = run_cell("drain", "enforce", "enforce", {}, a.repeat, a.rate, f"-sleep{s}",
                         ns_annotations={"zerodrop.dev/prestop-sleep": str(s)})
            sweep.append({"sleep": s, "runs": r["runs"]})
    text = table(results, sweep)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results, "sweep": sweep}, f, indent=1)
    if a.write:
        report.write_between(a.write, "proof", text)
    if a.smoke:
        lost = {r["scenario"]: sum(x[k]["failed"] for x in r["runs"] for k in ("restart", "scale_down"))
                for r in results}
        if lost["enforce"] != 0 or lost["none"] == 0:
            sys.exit(f"smoke: expected failures without zerodrop and none with it, got {lost}")


if __name__ == "__main__":
    main()
