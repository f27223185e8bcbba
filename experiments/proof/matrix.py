#!/usr/bin/env python3
"""The cluster matrix: rolling restarts and scale-downs of one app while three clients send on
three paths at once: the Service VIP from every node (each request through that node's own
kube-proxy), Traefik's Kubernetes Ingress, and the lagging load balancer (lagging_lb.py); every
failure placed against its pod's events. Runs on the topology `node.sh up --nodes N
--proxy-mode M` made and writes one JSON file per run; `--table` turns runs into docs' tables.

usage: matrix.py [--apps drain,exit,podinfo] [--zerodrop none,enforce] [--lag 15] [--repeat 1]
                 [--json OUT]
       matrix.py --sweep 0,1,2,3,5,... [--sweep-app drain] [--json OUT]  # enforce at each sleep
       matrix.py --smoke          # CI: the exit app, none, enforce and adaptive-conn, VIP from every node
       matrix.py --table RUN.json... [--write docs/proof.md]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import matrix_report
import report
from cluster import ROOT, admitted_until, apply, install_zerodrop, kubectl, settle, topology
from lagging_lb import LB, LaggingLB
from streams import StrictLoad, Vegeta
from traffic import (APPS, INGRESS, REPLICAS, SCALED, Traefik, builtin_manifests, import_image, phase,
                     podinfo_image, routes, tool, wait_routed)

# (client, keep-alive, method, tool): a new connection per request, keep-alive, and the strict
# client (keep-alive, retries nothing, POST: what a non-idempotent caller sees).
CLIENTS = (("new", False, "GET", "vegeta"), ("keepalive", True, "GET", "vegeta"),
           ("strict", True, "POST", "zerodrop-load"))


# The path classes' default delays (core/src/paths/class.rs); `cluster` and `ingress` follow
# the sleep.
CLASS_DELAY = {"load-balancer": 15, "aws-alb": 20, "aws-nlb": 125, "gke-l4": 15, "azure-app-gateway": 45}


def path_delay_given(pod, delay):
    """Whether admission gave the pod's first container `delay` s: its preStop sleep, or the
    adaptive drain waiter the path sets behind a balancer (counting requests, its maximum the
    class's delay; the defaults, 30 s, are no sign the index knew the Service)."""
    sleep = ((pod["spec"]["containers"][0].get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    if sleep.get("seconds", 0) >= delay:
        return True
    args = [x for c in pod["spec"].get("initContainers") or [] for x in c.get("args") or []]
    return "--count=requests" in args and f"--max={delay}s" in args


def short(node):
    """`node` for the real node, `c3` for zerodrop-client-3: the VIP path's key."""
    return "node" if node == "zerodrop-node" else "c" + node.rsplit("-", 1)[1]


def start_streams(vegeta, ns, vip, app, nodes, vip_rate, rate, paths):
    """Every client on every path: `vip:<node>/<client>/<method>` from inside each node's network
    namespace; `ingress/...` and `lb/...` from the real node, by Host."""
    out = {}
    targets = [(f"vip:{short(node)}", vip, None, netns, vip_rate) for node, netns in nodes if "vip" in paths]
    targets += [(p, base, host, None, rate) for p, base, host in
                (("ingress", INGRESS, f"{ns}.traffic"), ("lb", LB, f"{ns}.lb")) if p in paths]
    for path, base, host, netns, r in targets:
        for client, keepalive, method, tool_name in CLIENTS:
            url_path = app["post"] if method == "POST" else app["get"]
            key = f"{path}/{client}/{method}"
            if tool_name == "vegeta":
                out[key] = Vegeta(vegeta, f"http://{base}{url_path}", method, r, keepalive, False,
                                  host=host, netns=netns)
            else:
                out[key] = StrictLoad(tool("zerodrop"), base, url_path, method, r, keepalive, host=host,
                                      netns=netns)
    return out


def adaptive_policy(setting):
    """The pod annotations of an adaptive setting (see `cell`)."""
    policy = {"zerodrop.dev/drain": "adaptive"}
    rest = setting[len("adaptive"):].lstrip("-")
    if rest == "conn":
        policy["zerodrop.dev/drain-count"] = "connections"
    elif rest.startswith("q"):
        policy["zerodrop.dev/drain-quiet"] = rest[1:] + "s"
    elif rest:
        raise SystemExit(f"unknown adaptive setting {setting}: adaptive, adaptive-conn or adaptive-qN")
    return policy


def cell(setting, app_name, a, nodes, vegeta, traefik):
    """One app under one zerodrop setting: `none`, `enforce` (the default policy), `sleep=N`
    (enforce, the app's readiness policy and prestop-sleep N s), `path=CLASS` (enforce, the
    Service marked `zerodrop.dev/path-class: CLASS`), or the adaptive drain (`@CLASS` after it:
    its Service marked too):
    `adaptive` (counting requests), `adaptive-conn` (counting connections), `adaptive-qN`
    (requests, quiet window N s)."""
    app = APPS[app_name]
    ns = f"m-{app_name}-{setting.replace('=', '').replace('@', '-')}"
    print(f"{app_name} {setting}: {ns}", file=sys.stderr)
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    labels = {} if setting == "none" else {"zerodrop.dev/mode": "enforce"}
    annotations = {}
    if setting.startswith("sleep="):
        annotations = {**app.get("policy", {}), "zerodrop.dev/prestop-sleep": setting.split("=")[1] + "s"}
    base, _, marked = setting.partition("@")
    if base.startswith("path="):
        marked = base.split("=")[1]
    if base.startswith("adaptive"):
        annotations = adaptive_policy(base)
    items = builtin_manifests(ns, app, annotations)
    service = items[1]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
    if marked:
        # The Service marked as a path class: its pods get the class's delay (and under the
        # adaptive drain its maximum and count). The Service goes first and the Deployment only
        # once zerodrop's index has it (a watch event; a pod admitted before it would keep the
        # default sleep until the scan's path-changed: users' order, not this cell's question).
        service.setdefault("metadata", {}).setdefault("annotations", {})["zerodrop.dev/path-class"] = marked
        apply([namespace, service])
        template = items[0]["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
               "metadata": {**template["metadata"], "name": "path-probe", "namespace": ns}}
        admitted_until(pod, lambda p: path_delay_given(p, CLASS_DELAY.get(marked, 0)), 30,
                       f"zerodrop's index does not give Service {ns}/app's pods the {marked} delay")
    apply([namespace, *items, *(routes(ns, service, False) if "ingress" in a.paths else [])])
    settle(ns, REPLICAS)
    vip = kubectl("-n", ns, "get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}") + ":80"
    if "ingress" in a.paths:
        wait_routed(f"{ns}.traffic")
    if "lb" in a.paths:
        # Its router exists before its servers do (503): wait for the app's own answer.
        wait_routed(f"{ns}.lb", at=LB, answered=("", "000", "404", "503"))
    time.sleep(3)  # every kube-proxy programs the new Service
    # The lagging load balancer still routes to a gone pod for its lag: keep sending past it.
    tail = a.lag + 3 if "lb" in a.paths else 2

    def start():
        return start_streams(vegeta, ns, vip, app, nodes, a.vip_rate, a.rate, a.paths)
    runs = []
    for i in range(a.repeat):
        restart = phase(ns, start, None, lambda: kubectl("-n", ns, "rollout", "restart", "deploy/app"),
                        REPLICAS, replaces=True, tail=tail)
        scale = phase(ns, start, None, lambda: kubectl("-n", ns, "scale", "deploy/app", f"--replicas={SCALED}"),
                      SCALED, tail=tail)
        kubectl("-n", ns, "scale", "deploy/app", f"--replicas={REPLICAS}")
        settle(ns, REPLICAS)
        runs.append({"restart": restart, "scale_down": scale})
        print(f"  {app_name} {setting} run {i + 1}: " + report.brief(restart, scale), file=sys.stderr)
    pod = json.loads(kubectl("-n", ns, "get", "pods", "-o", "json"))["items"][0]
    kubectl("delete", "namespace", ns, "--wait=false")
    c = pod["spec"]["containers"][0]
    return {"app": app_name, "zerodrop": setting, "runs": runs,
            "prestop": (c.get("lifecycle") or {}).get("preStop"),
            "grace": pod["spec"].get("terminationGracePeriodSeconds")}


def main():
    tabled = report.table_runs()
    if tabled:
        runs, write = tabled
        print(matrix_report.document(runs))
        for name, part in matrix_report.parts(runs).items() if write else ():
            report.write_between(write, name, part)
        return
    p = argparse.ArgumentParser()
    p.add_argument("--apps", default="drain,exit,podinfo")
    p.add_argument("--zerodrop", default="none,enforce")
    p.add_argument("--sweep", help="prestop-sleep seconds to sweep (enforce with the app's readiness "
                   "policy), e.g. 0,1,2,3,5,15,16,18,20")
    p.add_argument("--sweep-app", default="drain", choices=["drain", "close-drain", "exit"],
                   help="the app the sweep rolls: drain stops accepting at SIGTERM, so what reaches it "
                   "afterwards is routing's; close-drain keeps answering 2 s more")
    p.add_argument("--paths", default="vip,ingress,lb")
    p.add_argument("--lag", type=float, default=15, help="the lagging load balancer's removal delay, s")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--vip-rate", type=int, default=10, help="req/s of each client on each node's VIP path")
    p.add_argument("--rate", type=int, default=30, help="req/s of each client on the ingress and lb paths")
    p.add_argument("--smoke", action="store_true", help="CI: the exit app without zerodrop, with it and "
                   "with the adaptive drain, VIP from every node; fails unless new connections fail "
                   "without it and never with it, and every adaptive pod's wait was measured")
    p.add_argument("--smoke-path", action="store_true", help="CI: the drain app behind the lagging "
                   "balancer (8 s) under the 5 s sleep and with its Service marked load-balancer (15 s); "
                   "fails unless the sleep loses and the marked Service loses nothing")
    p.add_argument("--json")
    a = p.parse_args()
    nodes, mode = topology()
    if a.smoke:
        a.apps, a.zerodrop, a.paths, a.sweep = "exit", "none,enforce,adaptive-conn", "vip", None
    if a.smoke_path:
        a.apps, a.zerodrop, a.paths, a.sweep, a.lag = "drain", "enforce,path=load-balancer", "lb", None, 8
    a.paths = a.paths.split(",")
    settings = [f"sleep={s}" for s in a.sweep.split(",")] if a.sweep else a.zerodrop.split(",")
    apps = [a.sweep_app] if a.sweep else a.apps.split(",")
    needed = ["vegeta"] + (["traefik"] if {"ingress", "lb"} & set(a.paths) else []) + \
        (["podinfo"] if "podinfo" in apps else [])
    tools = subprocess.run([os.path.join(ROOT, "tools/traffic/build.sh"), *needed], capture_output=True,
                           text=True, check=True).stdout.strip()
    if "podinfo" in apps:
        import_image(podinfo_image(os.path.join(tools, "podinfo")))
    install_zerodrop()
    traefik = Traefik(os.path.join(tools, "traefik")) if "ingress" in a.paths else None
    lb = LaggingLB(os.path.join(tools, "traefik"), a.lag) if "lb" in a.paths else None
    started = time.time()
    runs = [(s, app) for app in apps for s in settings]
    try:
        if a.smoke or a.smoke_path:
            # CI's cells side by side (their own namespaces): one cell's time, not two.
            with ThreadPoolExecutor(len(runs)) as pool:
                cells = list(pool.map(lambda r: cell(*r, a, nodes, os.path.join(tools, "vegeta"), traefik), runs))
        else:
            cells = [cell(s, app, a, nodes, os.path.join(tools, "vegeta"), traefik) for s, app in runs]
    finally:
        for part in (traefik, lb):
            if part:
                part.stop()
    result = {"nodes": len(nodes), "mode": mode, "lag": a.lag, "paths": a.paths, "vip_rate": a.vip_rate,
              "rate": a.rate, "sweep": bool(a.sweep), "seconds": round(time.time() - started), "cells": cells}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    print(matrix_report.document([result]))
    problem = matrix_report.smoke_problem(result) if a.smoke else \
        matrix_report.path_smoke_problem(result, CLASS_DELAY["load-balancer"]) if a.smoke_path else None
    if problem:
        sys.exit(f"smoke: {problem}")


if __name__ == "__main__":
    main()
