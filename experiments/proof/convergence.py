#!/usr/bin/env python3
"""Per-node convergence: for every pod a rollout or scale-down deletes, when each node's
kube-proxy stopped routing to it (rules.py), on the nodes `node.sh up --nodes N --proxy-mode M`
made. Optionally under load from every node (new connections to the Service), to show what CPU
contention does. Prints one JSON line per round and a summary.

usage: convergence.py [--rounds 5] [--replicas 6] [--load RATE] [--json OUT] [--changes]
       convergence.py --table RUN.json... [--write docs/proof.md]   # the runs as a table
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request

import report
from cluster import ROOT, apply, kubectl, settle, topology
from rules import ClusterRules
from streams import Vegeta
from timeline import Timeline
from traffic import APPS, builtin_manifests

NS = "convergence"
# How long every node is given to stop routing to a deleted pod; later counts as never.
WAIT = 30.0


def programming_histogram():
    """kube-proxy's own kubeproxy_network_programming_duration_seconds on the client nodes
    (their metrics listen on the Node's InternalIP), summed: {le: cumulative count}, a check on
    the rules' readings (its buckets are a second wide)."""
    out = {}
    addresses = kubectl("get", "nodes", "-l", "zerodrop.dev/client-node=true", "-o",
                        'jsonpath={.items[*].status.addresses[?(@.type=="InternalIP")].address}').split()
    for address in addresses:
        try:
            text = urllib.request.urlopen(f"http://{address}:10249/metrics", timeout=5).read().decode()
        except OSError as e:  # the cross-check then covers fewer nodes: say so
            print(f"kube-proxy metrics at {address}: {e}", file=sys.stderr)
            continue
        for m in re.finditer(r'^kubeproxy_network_programming_duration_seconds_bucket\{ip_family="IPv4",le="([^"]+)"\} (\d+)',
                             text, re.M):
            out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def quantile(values, q):
    """The q-quantile of a non-empty list by nearest rank: no interpolation between samples."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def summary(records, nodes):
    """Per node: p50/p90/max seconds from deletion seen to rules without the pod; per pod, the
    slowest node (what decides whether a new connection can still land) and the spread."""
    per_node = {name: [r["nodes"][name] for r in records if r["nodes"].get(name) is not None]
                for name, _ in nodes}
    missing = sum(1 for r in records for v in r["nodes"].values() if v is None)
    # A node that never stopped within WAIT is the slowest, at more than WAIT.
    slowest = [max(WAIT if v is None else v for v in r["nodes"].values()) for r in records]
    spread = [round(max(r["nodes"].values()) - min(r["nodes"].values()), 3)
              for r in records if None not in r["nodes"].values()]
    def q(vals):
        return {"p50": quantile(vals, 0.5), "p90": quantile(vals, 0.9), "max": max(vals)} if vals else None
    return {"pods": len(records), "never_removed": missing,
            "per_node": {k: q(v) for k, v in per_node.items()},
            "slowest_node": q(slowest), "spread": q(spread)}


def share(histogram, le):
    """The share of kube-proxy's observations at or under `le` seconds, as a percentage."""
    total = histogram.get("+Inf", 0)
    return f"{100 * histogram.get(le, 0) / total:.0f}%" if total else "-"


def table(runs):
    """The runs as a Markdown table, fewest nodes first; summaries recomputed from the records."""
    def q(v):
        return "never" if v is None else f"{v['p50']:.2f} / {v['p90']:.2f} / {v['max']:.2f}"
    rows = ["| nodes | mode | load (new connections, req/s) | pods deleted | slowest node: p50 / p90 / max s "
            "| spread across nodes: p50 / p90 / max s | not removed within 30 s | kube-proxy's own: <= 1 / 2 / 3 / 5 / 30 s "
            "| load failed |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(runs, key=lambda r: (r["nodes"], r["mode"], r["load"])):
        names = sorted({n for rec in r["records"] for n in rec["nodes"]})
        s = summary(r["records"], [(n, None) for n in names])
        h = r.get("kube_proxy_histogram", {})
        own = " / ".join(share(h, le) for le in ("1", "2", "3", "5", "30")) if h.get("+Inf") else "-"
        failed = f"{r['load_failed']} of {r['load_sent']}" if r["load_sent"] else "-"
        rows.append(f"| {r['nodes']} | {r['mode']} | {r['load'] * r['nodes'] or 'idle'} | {s['pods']} "
                    f"| {q(s['slowest_node'])} | {q(s['spread'])} | {s['never_removed']} | {own} | {failed} |")
    return "\n".join(rows)


def main():
    tabled = report.table_runs()
    if tabled:
        runs, write = tabled
        text = table(runs)
        print(text)
        if write:
            report.write_between(write, "convergence", text)
        return
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--load", type=int, default=0, help="req/s of new connections from every node")
    p.add_argument("--json")
    p.add_argument("--changes", action="store_true",
                   help="also record every node's rule changes for each deleted pod (evidence)")
    a = p.parse_args()
    nodes, mode = topology()
    app = APPS["drain"]
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    items = builtin_manifests(NS, app, {})
    items[0]["spec"]["replicas"] = a.replicas
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, *items])
    settle(NS, a.replicas)
    vip = kubectl("-n", NS, "get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}")
    time.sleep(3)
    rules = ClusterRules(nodes, mode)
    histogram_before = programming_histogram()
    load = []
    if a.load:
        tools = subprocess.run([os.path.join(ROOT, "tools/traffic/build.sh"), "vegeta"], capture_output=True,
                               text=True, check=True).stdout.strip()
        vegeta = os.path.join(tools, "vegeta")
        load = [Vegeta(vegeta, f"http://{vip}/", "GET", a.load, False, False, netns=ns) for _, ns in nodes]
    records = []
    try:
        for i in range(a.rounds):
            for action, want in (("restart", a.replicas), ("scale-down", a.replicas // 2)):
                timeline = Timeline(NS)
                before = {p for p in kubectl("-n", NS, "get", "pods", "-o", "name").split()}
                if action == "restart":
                    kubectl("-n", NS, "rollout", "restart", "deploy/app")
                    settle(NS, want, replaced={b.split("/", 1)[1] for b in before})
                else:
                    kubectl("-n", NS, "scale", "deploy/app", f"--replicas={want}")
                    settle(NS, want)
                pods_seen = timeline.stop()
                gone = [p["ip"] for p in pods_seen if "deleted" in p and "ip" in p]
                rules.wait_removed(gone, limit=WAIT)
                got = rules.convergence(pods_seen)
                if a.changes:
                    for r in got:
                        r["changes"] = rules.history(r["ip"])
                        r["seen"] = next({k: v for k, v in q.items() if k in ("deleted", "deletion_second", "not_ready")}
                                         for q in pods_seen if q.get("ip") == r["ip"])
                for r in got:
                    r.update(round=i + 1, action=action)
                records += got
                print(json.dumps({"round": i + 1, "action": action, "pods": got}), file=sys.stderr)
            kubectl("-n", NS, "scale", "deploy/app", f"--replicas={a.replicas}")
            settle(NS, a.replicas)
            time.sleep(2)
    finally:
        sent = [s.stop() for s in load]
        rules.stop()
    histogram = {le: n - histogram_before.get(le, 0) for le, n in programming_histogram().items()}
    result = {"nodes": len(nodes), "mode": mode, "load": a.load, "summary": summary(records, nodes),
              "kube_proxy_histogram": histogram,
              "load_sent": sum(s["sent"] for s in sent), "load_failed": sum(s["failed"] for s in sent),
              "records": records}
    print(json.dumps(result["summary"], indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    kubectl("delete", "namespace", NS, "--wait=false")


if __name__ == "__main__":
    main()
