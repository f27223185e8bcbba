"""What the node's experiments share: kubectl against the node, pods and their settling, and
zerodrop installed by its chart."""
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.environ.get("ZERODROP_NODE_DIR", "/tmp/zerodrop-node")
KUBECONFIG = os.path.join(NODE_DIR, "kubeconfig")
_bins = {}


def tool(name):
    """The path of a node tool: kubectl (from the harness) or zerodrop (from the images)."""
    if not _bins:
        bin_dir = subprocess.run([os.path.join(ROOT, "tools/harness/build.sh"), "--node"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        _bins["kubectl"] = os.path.join(bin_dir, "kubectl")
        with open(os.path.join(NODE_DIR, "images")) as f:
            _bins["zerodrop"] = os.path.join(f.read().strip(), "zerodrop")
    return _bins[name]


def kubectl(*args, input=None, check=True, warnings=None):
    out = subprocess.run([tool("kubectl"), *args], input=input, capture_output=True, text=True,
                         env={**os.environ, "KUBECONFIG": KUBECONFIG})
    if check and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    if warnings is not None:
        warnings.extend(l for l in out.stderr.splitlines() if l.startswith("Warning:"))
    return out.stdout


def watch(path, handle, lock):
    """Streams an apiserver watch (`kubectl get --raw PATH?watch=1`): calls handle(event, when it
    was read) under `lock` for each event, in a thread. Returns the process; kill it to stop."""
    proc = subprocess.Popen([tool("kubectl"), "get", "--raw", path], env={**os.environ, "KUBECONFIG": KUBECONFIG},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def read():
        for line in proc.stdout:
            now = time.time()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with lock:
                handle(event, now)
    threading.Thread(target=read, daemon=True).start()
    return proc


def topology():
    """(nodes, mode) from node.sh's topology file: [(Node name, netns or None)], the mode."""
    with open(os.path.join(NODE_DIR, "topology")) as f:
        count, mode = f.read().split()
    nodes = [("zerodrop-node", None)] + [(f"zerodrop-client-{i}", f"zd-c{i}") for i in range(1, int(count))]
    return nodes, mode


def apply(items, warnings=None):
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
            warnings=warnings)


def pods(ns):
    items = json.loads(kubectl("-n", ns, "get", "pods", "-o", "json"))["items"]
    return [(p["metadata"]["name"], "deletionTimestamp" in p["metadata"],
             all(c.get("ready") for c in p["status"].get("containerStatuses", [{}])))
            for p in items]


def settle(ns, want, limit=180, replaced=()):
    """Waits until exactly `want` pods exist, none terminating, all ready, and none of
    `replaced` (the pods a rollout replaces) is left."""
    deadline = time.time() + limit
    while time.time() < deadline:
        ps = pods(ns)
        if (len(ps) == want and all(ready and not gone for _, gone, ready in ps)
                and not any(name in replaced for name, _, _ in ps)):
            return
        time.sleep(0.25)
    raise RuntimeError(f"{ns}: pods did not settle at {want}: {pods(ns)}")


def install_zerodrop(inspect=False, replicas=1, extra=()):
    helm = subprocess.run([os.path.join(ROOT, "tools/helm/build.sh")], capture_output=True,
                          text=True, check=True).stdout.strip()
    subprocess.run([helm, "upgrade", "--install", "zerodrop", os.path.join(ROOT, "charts/zerodrop"),
                    "-n", "zerodrop-system", "--create-namespace",
                    "--set", "image.repository=zerodrop.local/zerodrop", "--set-string", "image.tag=1",
                    "--set", "image.pullPolicy=Never", "--set", f"replicaCount={replicas}",
                    # Most of the node's images are local (zerodrop.local): nothing to inspect
                    # unless a cell's image comes from the node's registry.
                    "--set", f"images.inspection={str(inspect).lower()}",
                    "--set", "images.insecureRegistries={198.18.0.1:5000}",
                    *extra, "--wait", "--timeout", "120s"],
                   env={**os.environ, "KUBECONFIG": KUBECONFIG}, check=True, capture_output=True)
    # An upgrade replaces the replica; the old one keeps serving the apiserver's open
    # connections for its shutdown delay. Cells start once it is gone, so every admission they
    # cause is answered by the configuration they are run with.
    settle("zerodrop-system", replicas)
    webhook_effective()


PROBE_NS = "zerodrop-probe"


def webhook_effective(limit=60):
    """Until a pod created (server-side dry run) in an enforce namespace comes back with
    zerodrop's ledger. Ready pods are not enough after a fresh install: the apiserver dials the
    Service's cluster IP, and until kube-proxy has programmed it the call is refused and the pod
    admitted unprotected (failurePolicy Ignore) - what failed CI's self-upgrade cell once."""
    apply([{"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": PROBE_NS, "labels": {"zerodrop.dev/mode": "enforce"}}}])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": PROBE_NS},
           "spec": {"containers": [{"name": "app", "image": "zerodrop.local/probe:1"}]}}
    waited = admitted_until(pod, lambda p: "zerodrop.dev/injected" in (p["metadata"].get("annotations") or {}),
                            limit, "zerodrop does not mutate pods")
    if waited > 0.5:
        print(f"zerodrop mutates pods {waited:.1f} s after its pods were ready", file=sys.stderr)


def admitted_until(pod, ok, limit, failure):
    """Seconds until `ok` holds for `pod` as admission returns it (server-side dry run, again
    every 0.5 s); `failure` (and exit) after `limit` s."""
    started = time.time()
    while True:
        out = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod),
                      check=False)
        try:
            if ok(json.loads(out)):
                return time.time() - started
        except (ValueError, KeyError, TypeError):
            pass
        if time.time() - started > limit:
            raise SystemExit(f"{failure} after {limit} s")
        time.sleep(0.5)


def shape(pod):
    """What zerodrop left on the pod: preStop, grace, readiness probe, command."""
    c = pod["spec"]["containers"][0]
    return {"grace": pod["spec"].get("terminationGracePeriodSeconds"),
            "preStop": c.get("lifecycle", {}).get("preStop"),
            "readiness": c.get("readinessProbe"),
            "command": c.get("command")}
