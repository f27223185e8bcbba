#!/usr/bin/env python3
"""The adaptive drain's waiter on the real node (issue 29): how long a pod takes to be Ready with
and without it, what it costs (memory and CPU from its container's cgroup, idle and through a
drain with new connections arriving), and what happens when it is killed mid-life. Needs
`node.sh up`.

usage: waiter.py [--pods 3] [--json OUT]
       waiter.py --ci      # one pod each way; fails unless the adaptive pod drains (quiet) and
                           # its killed waiter comes back
       waiter.py --gates 8 # time to Ready only, side by side: the sleep, the waiter held back by
                           # its postStart hook (as zerodrop writes it), by the startup probe
                           # earlier versions wrote, and by nothing
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import threading
import time

from cluster import KUBECONFIG, apply, install_zerodrop, kubectl, tool
from timeline import WAITER, drain_line
from traffic import APPS

NS = "waiter-proof"
CGROUP = "/sys/fs/cgroup"
CLIENT = "zd-c1"  # node.sh up --nodes 2 or more


def pod(name, adaptive):
    app = APPS["drain"]
    annotations = {"zerodrop.dev/drain": "adaptive"} if adaptive else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "spec": {"automountServiceAccountToken": False, "enableServiceLinks": False,
                     "containers": [{"name": "app", "image": app["image"], "imagePullPolicy": "Never",
                                     "args": app["args"],
                                     "ports": [{"name": "http", "containerPort": app["port"]}],
                                     "readinessProbe": {"httpGet": {"path": "/ready", "port": app["port"]},
                                                        "periodSeconds": 1}}]}}


def get(name):
    out = kubectl("-n", NS, "get", "pod", name, "-o", "json", check=False)
    return json.loads(out) if out.strip().startswith("{") else None


def ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))


def start(name, adaptive, limit=90):
    """Creates the pod; seconds until it was seen Ready (polled every 100 ms)."""
    created = time.time()
    apply([pod(name, adaptive)])
    while time.time() - created < limit:
        p = get(name)
        if p and ready(p):
            return round(time.time() - created, 2), p
        time.sleep(0.1)
    raise RuntimeError(f"{name} not Ready in {limit}s: {get(name)}")


def waiter_status(p):
    return next((s for s in p.get("status", {}).get("initContainerStatuses", []) if s["name"] == WAITER), None)


def cgroup_of(container_id):
    """The container's cgroup directories by controller: `memory` and `cpu` (cgroup v1, as on
    this node: /sys/fs/cgroup/<controller>/k8s.io/<id>) or both the one v2 directory; None if
    gone."""
    cid = container_id.split("://", 1)[-1]
    found = {}
    for controller, files in (("memory", ("memory.current", "memory.usage_in_bytes")),
                              ("cpu", ("cpu.stat", "cpuacct.usage"))):
        for root, dirs, _ in os.walk(CGROUP):
            hit = next((os.path.join(root, d) for d in dirs if cid in d), None)
            if hit and any(os.path.exists(os.path.join(hit, f)) for f in files):
                found[controller] = hit
                break
    return found if len(found) == 2 else None


def usage(paths):
    """(memory now MiB, its peak MiB, CPU s) of a container's cgroups, v1 or v2."""
    def read(controller, *names):
        for name in names:
            try:
                with open(os.path.join(paths[controller], name)) as fh:
                    return fh.read()
            except OSError:
                continue
        return None
    mib = lambda v: round(int(v) / 2**20, 1) if v else None
    stat = read("cpu", "cpu.stat") or ""
    usec = next((int(l.split()[1]) for l in stat.splitlines() if l.startswith("usage_usec")), None)
    cpu = usec / 1e6 if usec is not None else int(read("cpu", "cpuacct.usage") or 0) / 1e9
    return (mib(read("memory", "memory.current", "memory.usage_in_bytes")),
            mib(read("memory", "memory.peak", "memory.max_usage_in_bytes")), round(cpu, 3))


def send(ip, port, seconds, rate=20):
    """New connections to the pod for `seconds` (what the VIP path does while routing lags), from
    a client node's network namespace: the host's address is the kubelet's, which the waiter
    ignores."""
    script = (f"end=$(($(date +%s)+{seconds})); while [ $(date +%s) -lt $end ]; do "
              f"curl -s -m 1 -o /dev/null http://{ip}:{port}/; sleep {1 / rate}; done")
    subprocess.run(["ip", "netns", "exec", CLIENT, "sh", "-c", script], check=False)


def drain(name, p, arriving=8):
    """Deletes the pod while new connections arrive for `arriving` s; its waiter's drain line and
    its cgroup's usage before and at the last read during the drain."""
    cid = waiter_status(p)["containerID"]
    paths = cgroup_of(cid)
    before = usage(paths) if paths else None
    logs = subprocess.Popen([tool("kubectl"), "-n", NS, "logs", "-f", "-c", WAITER, name],
                            env={**os.environ, "KUBECONFIG": KUBECONFIG},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ip, port = p["status"]["podIP"], APPS["drain"]["port"]
    sender = threading.Thread(target=send, args=(ip, port, arriving))
    sender.start()
    time.sleep(0.5)
    kubectl("-n", NS, "delete", "pod", name, "--wait=false")
    during = before
    while paths and all(os.path.isdir(p) for p in paths.values()):
        during = usage(paths)
        time.sleep(0.2)
    sender.join()
    kubectl("-n", NS, "wait", "--for=delete", f"pod/{name}", "--timeout=120s", check=False)
    logs.kill()
    line = next((d for d in map(drain_line, logs.stdout.read().splitlines()) if d), None)
    return {"drain": line, "before": before, "during": during}


def killed(name, p):
    """Kills the waiter's processes; seconds until its status is running again, restarts."""
    paths = cgroup_of(waiter_status(p)["containerID"])
    with open(os.path.join(paths["memory"], "cgroup.procs")) as f:
        pids = [int(x) for x in f.read().split()]
    restarts = waiter_status(p).get("restartCount", 0)
    t0 = time.time()
    for pid in pids:
        os.kill(pid, 9)
    while time.time() - t0 < 60:
        s = waiter_status(get(name) or {}) or {}
        if s.get("restartCount", 0) > restarts and "running" in s.get("state", {}):
            return round(time.time() - t0, 2), s["restartCount"]
        time.sleep(0.05)
    raise RuntimeError(f"{name}: the killed waiter did not come back in 60 s")


def deleted_in_the_gap(name, p):
    """Kills the waiter and deletes the pod at once, before the kubelet has restarted it: how long
    the deletion took (the app drains 0 s here: an immediate SIGTERM shows as a short deletion) and
    the pod's FailedPreStopHook events."""
    paths = cgroup_of(waiter_status(p)["containerID"])
    with open(os.path.join(paths["memory"], "cgroup.procs")) as f:
        for pid in [int(x) for x in f.read().split()]:
            os.kill(pid, 9)
    t0 = time.time()
    kubectl("-n", NS, "delete", "pod", name, "--wait=true", "--timeout=120s")
    took = round(time.time() - t0, 2)
    events = kubectl("-n", NS, "get", "events", "--field-selector", f"involvedObject.name={name}",
                     "-o", "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}", check=False).split()
    return {"deletion_s": took, "failed_prestop_hook": events.count("FailedPreStopHook")}


GATES_NS = "waiter-gates"
# What zerodrop wrote before the postStart hook: the app held back by a startup probe.
EARLIER_GATE = {"httpGet": {"path": "/ready", "port": 9797}, "periodSeconds": 1, "failureThreshold": 30}


def gates(n):
    """Seconds to Ready per gate, `n` pods each, interleaved. The variants are the mutated pod
    zerodrop gives, changed and created in a namespace zerodrop leaves alone."""
    for ns, labels in ((NS, {"zerodrop.dev/mode": "enforce"}), (GATES_NS, {})):
        kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
        apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}])
    mutated = json.loads(kubectl("create", "--dry-run=server", "-o", "json", "-f", "-",
                                 input=json.dumps(pod("gates", True))))["spec"]
    mutated.pop("nodeName", None)

    def variant(kind):
        if kind == "sleep":
            return pod("x", False)["spec"]
        spec = copy.deepcopy(mutated)
        w = next(c for c in spec["initContainers"] if c["name"] == WAITER)
        if kind != "hook":
            w.pop("lifecycle")
        if kind == "probe":
            w["startupProbe"] = EARLIER_GATE
        return spec

    result = {"sleep": [], "hook": [], "probe": [], "none": []}
    for i in range(n):
        for kind, took in result.items():
            name = f"{kind}-{i}"
            created = time.time()
            apply([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": GATES_NS},
                    "spec": variant(kind)}])
            while not ready(json.loads(kubectl("-n", GATES_NS, "get", "pod", name, "-o", "json"))):
                if time.time() - created > 90:
                    raise RuntimeError(f"{name} not Ready in 90 s")
                time.sleep(0.05)
            took.append(round(time.time() - created, 2))
            kubectl("-n", GATES_NS, "delete", "pod", name, "--wait=false", "--grace-period=1")
    kubectl("delete", "namespace", GATES_NS, "--wait=false")
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pods", type=int, default=3)
    p.add_argument("--ci", action="store_true")
    p.add_argument("--gates", type=int, metavar="N")
    p.add_argument("--json")
    a = p.parse_args()
    if a.gates:
        install_zerodrop()
        result = gates(a.gates)
        print(json.dumps({k: {"median": sorted(v)[len(v) // 2], "all": v} for k, v in result.items()}))
        return
    n = 1 if a.ci else a.pods
    install_zerodrop()
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"zerodrop.dev/mode": "enforce"}}}])
    result = {"ready_s": {"sleep": [], "adaptive": []}, "drains": [], "killed": []}
    for i in range(n):
        for mode in ("sleep", "adaptive"):
            took, created = start(f"{mode}-{i}", mode == "adaptive")
            result["ready_s"][mode].append(took)
            if mode == "adaptive":
                if waiter_status(created) is None:
                    sys.exit(f"{created['metadata']['name']}: no waiter")
                time.sleep(2)  # idle a moment: the idle reading
                result["killed"].append(killed(f"adaptive-{i}", created))
                time.sleep(1)
                result["drains"].append(drain(f"adaptive-{i}", get(f"adaptive-{i}")))
                if not a.ci:
                    _, gap = start(f"gap-{i}", True)
                    time.sleep(2)
                    result.setdefault("gap", []).append(deleted_in_the_gap(f"gap-{i}", gap))
            else:
                kubectl("-n", NS, "delete", "pod", f"{mode}-{i}", "--wait=false")
    kubectl("delete", "namespace", NS, "--wait=false")
    print(json.dumps(result, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    if a.ci:
        d = result["drains"][0]["drain"]
        if not d or d.get("ending") != "quiet" or d.get("new_connections", 0) < 1:
            sys.exit(f"waiter: the adaptive pod's drain was not measured quiet after new connections: {d}")


if __name__ == "__main__":
    main()
