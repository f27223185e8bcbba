#!/usr/bin/env python3
"""`zerodrop verify` against the real node: the cases of issue 18, each a real rollout under a
real load pod. Needs the node up (node.sh up); installs zerodrop with its chart.

usage: verify.py [--only CASE,...] [--transcript FILE]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

from cluster import KUBECONFIG, ROOT, apply, install_zerodrop, kubectl, settle, tool
import experiment

FAILED = []


def check(case, cond, what):
    print(f"  {'ok ' if cond else 'FAIL'} {case}: {what}", file=sys.stderr)
    if not cond:
        FAILED.append(f"{case}: {what}")


def deploy(ns, app, mode, annotations=None):
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    apply(experiment.manifests(ns, app, mode, annotations or {}))
    settle(ns, experiment.REPLICAS)


def verify(ns, *flags, interrupt_after=None):
    """Runs `zerodrop verify deployment/app -n NS -o json`; (exit code, parsed output)."""
    args = [tool("zerodrop"), "verify", "deployment/app", "-n", ns, "--kubeconfig", KUBECONFIG,
            "-o", "json", "--rate", "50", *flags]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if interrupt_after:
        interrupt_after()
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=900)
    try:
        parsed = json.loads(out) if out.strip() else {}
    except ValueError:
        parsed = {"unparsed": out, "stderr": err}
    return proc.returncode, parsed


def advice_keys(report):
    return [a["key"] for a in report.get("advice", [])]


def left_behind(ns):
    return kubectl("-n", ns, "get", "pods", "-l", "app.kubernetes.io/managed-by=zerodrop-verify",
                   "-o", "name").split()


def template_annotations(ns):
    d = json.loads(kubectl("-n", ns, "get", "deploy", "app", "-o", "json"))
    return d["spec"]["template"]["metadata"].get("annotations") or {}


def case_no_zerodrop():
    ns = "v-exit-none"
    deploy(ns, "exit", None)
    code, r = verify(ns, "--keepalive=false")
    check("no zerodrop", code == 1, f"exit 1 (got {code}, {r.get('error', '')})")
    check("no zerodrop", sum(x["failed"] for x in r.get("runs", [])) > 0, "failures reported")
    check("no zerodrop", "label-namespace" in advice_keys(r), f"advice label-namespace ({advice_keys(r)})")
    check("no zerodrop", not left_behind(ns), "no load pod left")
    return r


def case_enforce():
    ns = "v-exit-enforce"
    deploy(ns, "exit", "enforce")
    code, r = verify(ns, "--keepalive=false")
    check("enforce", code == 0, f"exit 0 (got {code}: {[x['by_kind'] for x in r.get('runs', [])]})")
    check("enforce", r.get("carried", {}).get("prestop") is not None, "the pods carry zerodrop's preStop")
    # With keep-alive clients (the default) the exit app still loses requests in flight at its
    # SIGTERM: admission cannot make an app drain; verify says so.
    code, r2 = verify(ns)
    lost = sum(x["failed"] for x in r2.get("runs", []))
    check("enforce keep-alive", code in (0, 1) and (lost == 0 or "app-drain" in advice_keys(r2)),
          f"0 failed, or the app-drain advice (got {code}, {lost} failed, {advice_keys(r2)})")
    return r


def case_slow():
    ns = "v-slow-enforce"
    deploy(ns, "slow", "enforce")
    code, r = verify(ns, "--keepalive=false")
    check("slow start", code == 1, f"exit 1 (got {code}, {r.get('error', '')})")
    check("slow start", "readiness-path" in advice_keys(r), f"advice readiness-path ({advice_keys(r)})")


def converged_now(ns, want):
    """What `kubectl get pods` shows the moment verify exits: `want` pods, all Running and
    ready, none terminating (verify waits for its own rollouts to end)."""
    items = json.loads(kubectl("-n", ns, "get", "pods", "-l", "app=app", "-o", "json"))["items"]
    bad = [(p["metadata"]["name"], p["status"].get("phase"), "deletionTimestamp" in p["metadata"])
           for p in items
           if "deletionTimestamp" in p["metadata"] or p["status"].get("phase") != "Running"
           or not all(c.get("ready") for c in p["status"].get("containerStatuses", [{}]))]
    return len(items) == want and not bad, f"{len(items)} pods, not settled: {bad}"


def case_sweep():
    """A sweep that ends at 0 s (largest first): the restore replaces the 0 s pods and is
    measured as that value's run; verify exits once the workload has converged."""
    ns = "v-drain-sweep"
    deploy(ns, "drain", "enforce")
    code, r = verify(ns, "--keepalive=false", "--sweep-sleep", "0,2,5")
    settled, why = converged_now(ns, experiment.REPLICAS)
    check("sweep", settled, f"converged when verify exits ({why})")
    rec = r.get("recommended_sleep_s")
    points = {p["sleep_s"]: p["routing"] for p in r.get("sweep", [])}
    check("sweep", code in (0, 1) and rec is not None, f"a recommendation (got {code}, {r.get('error')}, {points})")
    # docs/proof.md's sweep on this node: 0 s loses requests, 1-2 s usually nothing, the
    # default 5 s nothing: the smallest safe value is at most 5 s (recommended: it + margin).
    check("sweep", sum(points.get(0, [])) > 0, f"no sleep loses requests to routing ({points})")
    check("sweep", rec is not None and rec <= 7, f"recommended at most 5 s + margin (got {rec}, {points})")
    # The default repetitions (2 with a sweep), and the restore counted as the 0 s value's run.
    check("sweep", [len(points.get(v, [])) for v in (5, 2, 0)] == [2, 2, 3],
          f"2 runs per value, the restore a third of 0 s ({points})")
    restore = [x for x in r.get("runs", []) if x["action"] == "restore"]
    check("sweep", len(restore) == 1 and restore[0]["sleep_s"] == 0, f"the restore measured ({restore})")
    for run in r.get("runs", []):
        print(f"    {run['action']} sleep {run['sleep_s']}s: {run['failed']} failed {run['by_kind']} "
              f"{run['by_cause']}", file=sys.stderr)
    check("sweep", "zerodrop.dev/prestop-sleep" not in template_annotations(ns), "annotation restored")
    # The pods after the sweep are the restored ones (the default 5 s sleep and zerodrop's
    # ledger), not the last swept step's; the 0 s step's pods (no hook, no ledger: admitted
    # unchanged) are not "escaped".
    carried = r.get("carried", {})
    check("sweep", carried.get("prestop") == '{"sleep":{"seconds":5}}' and carried.get("ledger"),
          f"pods carried: the restored workload ({carried})")
    check("sweep", "escaped" not in advice_keys(r), f"no escaped advice ({r.get('advice')})")
    # The 0 s runs' routing failures are the sweep's to judge, not a verdict on the 5 s sleep
    # the restored pods carry.
    check("sweep", "prestop-sleep" not in advice_keys(r), f"no prestop-sleep advice ({r.get('advice')})")
    restored = r.get("restored") or ""
    check("sweep", "removed again" in restored and "converged" in restored,
          f"says what it put back ({restored})")
    return r


def case_at_rest():
    """An app that answers every request with 503 (ready by a TCP probe, never initialised):
    refused in seconds, with counts that add up."""
    ns = "v-broken-enforce"
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    items = experiment.manifests(ns, "slow", "enforce", {})
    dep = next(i for i in items if i["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["args"] = ["--on-sigterm", "drain", "--ready-after", "100000"]
    apply(items)
    settle(ns, experiment.REPLICAS)
    code, r = verify(ns)
    error = r.get("error", "")
    check("at rest", code == 2 and "fails at rest" in error, f"refused (got {code}, {r})")
    m = re.match(r"(\d+) of (\d+) requests failed before any action \(([^)]*)\)", error)
    counts = [int(n) for n in re.findall(r" (\d+)(?:,|$)", m.group(3))] if m else []
    check("at rest", m is not None and sum(counts) == int(m.group(1)),
          f"the classes add up to the failed count ({error})")
    # Judged 2 s into the second window at 50 req/s (the first is excused: an app warming up),
    # not after six 5 s windows (1,500 requests).
    check("at rest", m is not None and int(m.group(2)) <= 450, f"refused within seconds ({error})")
    check("at rest", not left_behind(ns), "no load pod left")


def case_not_installed():
    """No zerodrop in the cluster (verify runs with --image): install it first, then label.
    Uninstalls zerodrop: the last case."""
    helm = subprocess.run([os.path.join(ROOT, "tools/helm/build.sh")], capture_output=True,
                          text=True, check=True).stdout.strip()
    subprocess.run([helm, "uninstall", "zerodrop", "-n", "zerodrop-system", "--wait", "--timeout", "120s"],
                   env={**os.environ, "KUBECONFIG": KUBECONFIG}, check=True, capture_output=True)
    ns = "v-exit-uninstalled"
    deploy(ns, "exit", None)
    code, r = verify(ns, "--keepalive=false", "--image", "zerodrop.local/zerodrop:1")
    keys = advice_keys(r)
    check("not installed", code == 1 and "install-zerodrop" in keys and "label-namespace" not in keys,
          f"install first, not only the label (got {code}, {keys}, {r.get('error', '')})")
    text = " ".join(a["text"] for a in r.get("advice", []))
    check("not installed", "helm install zerodrop" in text, f"the install command ({text})")


def case_interrupt():
    ns = "v-drain-interrupt"
    deploy(ns, "drain", "enforce")
    before = template_annotations(ns)

    def once_load_runs():
        deadline = time.time() + 60
        while time.time() < deadline and not left_behind(ns):
            time.sleep(0.3)
        time.sleep(12)  # into the sweep: the annotation is set, a rollout under way

    code, r = verify(ns, "--keepalive=false", "--sweep-sleep", "3", interrupt_after=once_load_runs)
    check("Ctrl-C", code == 2 and "converged" in r.get("error", ""), f"exit 2, converged (got {code}, {r})")
    settled, why = converged_now(ns, experiment.REPLICAS)
    check("Ctrl-C", settled, f"converged when verify exits ({why})")
    check("Ctrl-C", not left_behind(ns), "no load pod left")
    after = template_annotations(ns)
    check("Ctrl-C", after.get("zerodrop.dev/prestop-sleep") == before.get("zerodrop.dev/prestop-sleep"),
          f"annotation restored ({after})")


def case_statefulset():
    """The same command for a StatefulSet: pods replaced one at a time, in order."""
    ns = "v-drain-sts"
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    items = experiment.manifests(ns, "drain", "enforce", {})
    sts = next(i for i in items if i["kind"] == "Deployment")
    sts.update({"kind": "StatefulSet"})
    sts["spec"].pop("strategy")
    sts["spec"].update({"replicas": 2, "serviceName": "app", "podManagementPolicy": "OrderedReady"})
    apply(items)
    settle(ns, 2)
    args = [tool("zerodrop"), "verify", "statefulset/app", "-n", ns, "--kubeconfig", KUBECONFIG,
            "-o", "json", "--rate", "50", "--keepalive=false"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    r = json.loads(out.stdout) if out.stdout.strip() else {}
    runs = r.get("runs", [])
    check("statefulset", out.returncode == 0, f"exit 0 (got {out.returncode}: {r.get('error', [x['by_kind'] for x in runs])})")
    check("statefulset", len(runs) == 1 and runs[0]["rollout_s"] > 5, f"one restart of both pods, each after its 5 s sleep ({runs})")
    check("statefulset", not left_behind(ns), "no load pod left")


def case_own_namespace():
    """zerodrop's namespace is refused wherever it was installed, whatever the flag says."""
    args = [tool("zerodrop"), "verify", "deployment/zerodrop", "-n", "zerodrop-system", "--kubeconfig",
            KUBECONFIG, "-o", "json", "--zerodrop-namespace", "somewhere-else"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    r = json.loads(out.stdout) if out.stdout.strip() else {}
    check("own namespace", out.returncode == 2 and "zerodrop's own" in r.get("error", ""),
          f"exit 2, refused as zerodrop's own (got {out.returncode}, {r})")


def transcript(path):
    """Real table-output runs for docs/verify.md: the exit app without and with zerodrop, and a
    sweep of the drain app (the namespaces the cases above deployed)."""
    runs = [("v-exit-none", []), ("v-exit-enforce", ["--actions", "restart,scale-down"]),
            ("v-drain-sweep", ["--keepalive=false", "--sweep-sleep", "2,0"])]
    with open(path, "w") as f:
        for ns, flags in runs:
            out = subprocess.run([tool("zerodrop"), "verify", "deployment/app", "-n", ns, "--kubeconfig",
                                  KUBECONFIG, "--rate", "50", *flags], capture_output=True, text=True)
            f.write(f"$ zerodrop verify deployment/app -n {ns} {' '.join(flags)}".rstrip()
                    + f"\n{out.stdout}{out.stderr}(exit {out.returncode})\n")


CASES = {"no-zerodrop": case_no_zerodrop, "enforce": case_enforce, "slow": case_slow,
         "sweep": case_sweep, "at-rest": case_at_rest, "interrupt": case_interrupt,
         "statefulset": case_statefulset, "own-namespace": case_own_namespace,
         "not-installed": case_not_installed}  # uninstalls zerodrop: last


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only", default="")
    p.add_argument("--transcript")
    a = p.parse_args()
    install_zerodrop()
    wanted = a.only.split(",") if a.only else list(CASES)
    for name in wanted:
        print(f"verify case {name}", file=sys.stderr)
        CASES[name]()
    if a.transcript:
        transcript(a.transcript)
    if FAILED:
        sys.exit("verify on the node failed:\n  " + "\n  ".join(FAILED))


if __name__ == "__main__":
    main()
