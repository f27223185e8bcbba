#!/usr/bin/env python3
"""zerodrop's own upgrade: `helm upgrade` with a changed value, then `kubectl rollout restart` of
its Deployment, while a Deployment in an enforce namespace is scaled up and down in a loop. Every
pod created meanwhile must carry zerodrop's ledger and preStop hook from its creation (the pods'
watch sees each as the apiserver stored it), and the background scan must count 0 unprotected
pods there. Exit 1 if any escaped. Needs the node up (node.sh up).

usage: self_upgrade.py [--json OUT]
"""
import argparse
import json
import os
import sys
import threading
import time

from cluster import NODE_DIR, apply, install_zerodrop, kubectl, settle, watch
from traffic import APPS, builtin_manifests

NS = "self-upgrade"
SYSTEM = "zerodrop-system"
LEDGER = "zerodrop.dev/injected"


class Created:
    """Every pod the watch sees ADDED in the namespace, as it was created."""

    def __init__(self):
        self.pods, self.lock = {}, threading.Lock()
        self.proc = watch(f"/api/v1/namespaces/{NS}/pods?watch=1", self._event, self.lock)

    def _event(self, event, now):
        if event.get("type") == "ADDED":
            pod = event["object"]
            self.pods.setdefault(pod["metadata"]["name"], {**protection(pod), "seen": now})

    def stop(self):
        self.proc.kill()
        with self.lock:
            return dict(self.pods)


def protection(pod):
    """What zerodrop left on a pod at its creation: its ledger and the container's preStop."""
    c = pod["spec"]["containers"][0]
    return {"ledger": LEDGER in (pod["metadata"].get("annotations") or {}),
            "prestop": bool((c.get("lifecycle") or {}).get("preStop"))}


APISERVER_LOG = os.path.join(NODE_DIR, "kube-apiserver.log")


def failing_open(since):
    """The apiserver's own account of webhook calls that failed open since the log's byte
    offset `since`: why a pod escaped (refused, reset, timeout, certificate)."""
    try:
        with open(APISERVER_LOG, errors="replace") as f:
            f.seek(since)
            return [line.strip()[:400] for line in f if "failing open" in line]
    except OSError as e:
        return [f"(apiserver log unreadable: {e})"]


def log_size():
    try:
        return os.path.getsize(APISERVER_LOG)
    except OSError:
        return 0


def churn(stop, counts):
    """Scale between 1 and 4 replicas every second: pods created steadily."""
    n = 0
    while not stop.is_set():
        n += 1
        kubectl("-n", NS, "scale", "deploy/app", f"--replicas={4 if n % 2 else 1}", check=False)
        counts["scales"] = n
        time.sleep(1)


def unprotected_by_scan(since):
    """zerodrop_unprotected_pods for the namespace, summed over reasons and replicas (a series
    exists only while it is above 0), and whether a scan succeeded after `since`."""
    total, scanned = 0, False
    names = kubectl("-n", SYSTEM, "get", "pods", "-l", "app.kubernetes.io/name=zerodrop", "-o", "name").split()
    for name in names:
        text = kubectl("get", "--raw", f"/api/v1/namespaces/{SYSTEM}/{name.replace('pod/', 'pods/')}:8080/proxy/metrics",
                       check=False)
        for line in text.splitlines():
            if line.startswith("zerodrop_unprotected_pods{") and f'namespace="{NS}"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
            if line.startswith("zerodrop_scan_last_success_timestamp_seconds "):
                scanned |= float(line.rsplit(" ", 1)[1]) > since
    return total, scanned


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json")
    p.add_argument("--control", action="store_true",
                   help="take zerodrop away for 10 s instead of upgrading it: pods must escape (the cell can fail)")
    a = p.parse_args()
    # Two replicas as the chart ships, a scan every 10 s so its verdict comes within the run.
    install_zerodrop(replicas=2, extra=["--set", "scan.interval=10s"])
    # The apiserver's log from here: the cell's own calls (not the install's wait for the
    # webhook, whose dry-run pods fail open until kube-proxy routes the Service).
    log_from = log_size()
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    apply([{"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"zerodrop.dev/mode": "enforce"}}},
           *builtin_manifests(NS, APPS["exit"], {})])
    settle(NS, 4)
    began = time.time()
    created, stop, counts = Created(), threading.Event(), {}
    worker = threading.Thread(target=churn, args=(stop, counts), daemon=True)
    worker.start()
    steps = []
    try:
        time.sleep(5)
        upgrade = (
                ("helm upgrade (server.logLevel=debug)",
                 lambda: install_zerodrop(replicas=2, extra=["--set", "scan.interval=10s", "--set", "server.logLevel=debug"])),
                ("kubectl rollout restart", lambda: (
                    kubectl("-n", SYSTEM, "rollout", "restart", "deploy/zerodrop"),
                    kubectl("-n", SYSTEM, "rollout", "status", "deploy/zerodrop", "--timeout=180s"))))
        # Its pods are removed at once: scaled down gracefully they would keep serving for their
        # preStop sleep and shutdown delay, and the outage would not be one.
        outage = (("zerodrop scaled to 0 and its pods killed, for 10 s", lambda: (
            kubectl("-n", SYSTEM, "scale", "deploy/zerodrop", "--replicas=0"),
            kubectl("-n", SYSTEM, "delete", "pods", "-l", "app.kubernetes.io/name=zerodrop",
                    "--grace-period=0", "--force", "--wait=false"), time.sleep(10),
            kubectl("-n", SYSTEM, "scale", "deploy/zerodrop", "--replicas=2"), settle(SYSTEM, 2))),)
        for what, action in (outage if a.control else upgrade):
            started = time.time()
            action()
            steps.append({"step": what, "from_s": round(started - began, 1),
                          "seconds": round(time.time() - started, 1)})
            print(f"{what}: {steps[-1]['seconds']} s", file=sys.stderr)
            time.sleep(5)
    finally:
        stop.set()
        worker.join()
        pods = created.stop()
    escaped = sorted(name for name, p in pods.items() if not (p["ledger"] and p["prestop"]))
    # When each escaped, against the steps above (seconds from the churn's start).
    escaped_at = {name: round(pods[name]["seen"] - began, 1) for name in escaped}
    kubectl("-n", NS, "scale", "deploy/app", "--replicas=2")
    settle(NS, 2)
    settled = time.time()
    scan, scanned = 0, False
    for _ in range(60):  # until a scan has seen the settled namespace (every 10 s)
        scan, scanned = unprotected_by_scan(settled + 1)
        if scanned:
            break
        time.sleep(1)
    result = {"pods_created": len(pods), "scales": counts.get("scales", 0), "steps": steps,
              "escaped": escaped, "escaped_at_s": escaped_at, "failing_open": failing_open(log_from),
              "scan_unprotected": scan, "scanned_after": scanned}
    print(json.dumps(result, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    kubectl("delete", "namespace", NS, "--wait=false")
    if escaped or scan or not scanned or len(pods) < 10:
        sys.exit(f"self-upgrade: {len(escaped)} of {len(pods)} pod(s) admitted unprotected, scan counts "
                 f"{scan}{'' if scanned else ' (no scan after the churn)'}")


if __name__ == "__main__":
    main()
