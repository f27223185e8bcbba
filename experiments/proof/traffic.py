#!/usr/bin/env python3
"""The traffic matrix: rolling restarts and scale-downs while several real clients send at once
through two paths (the Service VIP through kube-proxy, and Traefik's Kubernetes Ingress), each
failure classified and placed relative to the pod it hit. Needs the node up (node.sh up).

usage: traffic.py [--apps podinfo,drain,exit] [--zerodrop none,enforce] [--repeat N] [--rate R]
                  [--json OUT] [--write docs/proof.md] [--smoke]
       traffic.py --image ARCHIVE.tar|REF --manifest app.yaml [--name NAME] [--path /]
                  [--method GET|POST] [--h2c] [--zerodrop none,enforce] [--repeat N]   # your own app
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import report
from cluster import KUBECONFIG, NODE_DIR, ROOT, apply, install_zerodrop, kubectl, pods, settle, shape, tool
from streams import StrictLoad, Vegeta
from timeline import Timeline, attribute, rfc3339

REPLICAS, SCALED = 4, 2
INGRESS = "198.18.0.1:8000"  # Traefik's entrypoint, on the node's bridge
PODINFO = "zerodrop.local/podinfo:6.9.2"

# Built-in apps: what the container runs, where it listens, the paths of a GET and a POST.
APPS = {
    "podinfo": {"image": PODINFO, "args": ["--port=9898", "--h2c"], "port": 9898, "h2c": True,
                # podinfo's own manifests probe /readyz, which fails from its SIGTERM on.
                "readiness": {"httpGet": {"path": "/readyz", "port": 9898}, "periodSeconds": 2},
                "get": "/", "post": "/echo"},
    # No readiness probe (as many apps ship): the policy that helps names the app's ready URL.
    "drain": {"image": "zerodrop.local/rollout-app:1", "args": ["--on-sigterm", "drain"],
              "port": 8080, "get": "/", "post": "/", "policy": {"zerodrop.dev/readiness-path": "/ready"}},
    # What an app must do for keep-alive clients: answer `Connection: close` for a while after
    # SIGTERM before closing (testkit/src/bin/rollout_app.rs).
    "close-drain": {"image": "zerodrop.local/rollout-app:1", "args": ["--on-sigterm", "close-drain"],
                    "port": 8080, "get": "/", "post": "/", "policy": {"zerodrop.dev/readiness-path": "/ready"}},
    "exit": {"image": "zerodrop.local/rollout-app:1", "args": ["--on-sigterm", "exit"],
             "port": 8080, "get": "/", "post": "/", "policy": {"zerodrop.dev/readiness-path": "/ready"}},
}
# The namespace's zerodrop.dev/mode, and whether the pod template carries the app's policy.
SCENARIOS = {"none": (None, False), "enforce": ("enforce", False), "enforce+policy": ("enforce", True)}


def clients(app):
    """(name, tool, keep-alive, method, h2c) of the clients that run at once on each path.
    Our apps: new connections carry one request each and neither tool retries one, so their GET
    and POST cannot differ: GET only; the strict client retries nothing whatever the method:
    POST only. An app given on the command line (`methods`): every client, each sending its one
    method, the strict client above all (it shows the true race)."""
    if "methods" in app:
        method = app["methods"][0]
        out = [("new", "vegeta", False, method, False),
               ("keepalive", "vegeta", True, method, False),
               ("strict-keepalive", "zerodrop-load", True, method, False)]
    else:
        out = [("new", "vegeta", False, "GET", False),
               ("keepalive", "vegeta", True, "GET", False),
               ("keepalive", "vegeta", True, "POST", False),
               ("strict-keepalive", "zerodrop-load", True, "POST", False)]
    if app.get("h2c"):
        out.append(("h2c", "vegeta", True, out[-1][3], True))
    return out


def described(app):
    """The clients that ran, as the tables say them: `new GET (vegeta)`, ..."""
    return [f"{name} {method}{' h2c' if h2c else ''} ({tool_name})"
            for name, tool_name, _, method, h2c in clients(app)]


def app_name(text):
    """Your app's name in tables and namespaces (t-NAME-MODE): a DNS label, short."""
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?", text or ""):
        raise argparse.ArgumentTypeError(f"{text!r}: lower-case letters, digits and '-', at most 30")
    return text


def builtin_manifests(ns, app, annotations):
    c = {"name": "app", "image": app["image"], "imagePullPolicy": "Never",
         "args": app["args"], "ports": [{"name": "http", "containerPort": app["port"]}]}
    if "readiness" in app:
        c["readinessProbe"] = app["readiness"]
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": ns},
         "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "app"}},
                  "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                  "template": {"metadata": {"labels": {"app": "app"}, "annotations": annotations},
                               "spec": {"automountServiceAccountToken": False,
                                        "enableServiceLinks": False, "containers": [c]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": ns},
         "spec": {"selector": {"app": "app"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
    ]


def user_manifests(ns, path, annotations):
    """The user's Deployment and Service (YAML or JSON, several documents), into `ns`."""
    text, items, dec, at = kubectl("create", "--dry-run=client", "-o", "json", "-f", path), [], json.JSONDecoder(), 0
    while text[at:].strip():  # one JSON object per document, back to back
        at += len(text[at:]) - len(text[at:].lstrip())
        obj, at = dec.raw_decode(text, at)
        items.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    kinds = sorted(i["kind"] for i in items)
    if kinds != ["Deployment", "Service"]:
        sys.exit(f"{path}: expected one Deployment and one Service, found {kinds}")
    for i in items:
        i["metadata"]["namespace"] = ns
        if i["kind"] == "Deployment":
            i["spec"]["replicas"] = REPLICAS
            meta = i["spec"]["template"].setdefault("metadata", {})
            meta.setdefault("annotations", {}).update(annotations)
            i["metadata"]["name"] = "app"
        else:
            i["metadata"]["name"] = "app"
    return items


def routes(ns, service, h2c):
    """A Service copy that Traefik speaks h2c to (when the app can) and an Ingress per Service,
    routed by host: <ns>.traffic (HTTP/1.1 upstream) and <ns>-h2c.traffic."""
    port = service["spec"]["ports"][0]["port"]
    items, rules = [], [(f"{ns}.traffic", "app")]
    if h2c:
        twin = json.loads(json.dumps(service))
        twin["metadata"] = {"name": "app-h2c", "namespace": ns, "annotations": {
            "traefik.ingress.kubernetes.io/service.serversscheme": "h2c"}}
        twin["spec"].pop("clusterIP", None)
        twin["spec"].pop("clusterIPs", None)
        items.append(twin)
        rules.append((f"{ns}-h2c.traffic", "app-h2c"))
    items.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                  "metadata": {"name": "app", "namespace": ns},
                  "spec": {"rules": [{"host": host, "http": {"paths": [
                      {"path": "/", "pathType": "Prefix",
                       "backend": {"service": {"name": svc, "port": {"number": port}}}}]}}
                      for host, svc in rules]}})
    return items


class Traefik:
    """Traefik v3 as a process on the node, its Kubernetes Ingress provider reading the node's
    kubeconfig; defaults everywhere (no retries, no health checks), errors in a JSON access log."""

    def __init__(self, binary):
        self.access = os.path.join(NODE_DIR, "traefik-access.json")
        self.log = open(os.path.join(NODE_DIR, "traefik.log"), "a")
        self.proc = subprocess.Popen(
            [binary, f"--entryPoints.web.address={INGRESS}", "--providers.kubernetesingress=true",
             "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
             "--log.level=INFO", "--accesslog=true", f"--accesslog.filePath={self.access}",
             "--accesslog.format=json", "--accesslog.filters.statusCodes=300-599"],
            env={**os.environ, "KUBECONFIG": KUBECONFIG}, stdout=self.log, stderr=self.log)

    def errors(self, since, until):
        out = []
        if not os.path.exists(self.access):
            return out
        with open(self.access) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                at = rfc3339(r.get("StartUTC", "1970-01-01T00:00:00Z"))
                if since <= at <= until:
                    out.append({"at": at, "status": r.get("DownstreamStatus"),
                                "upstream": r.get("ServiceAddr"), "host": r.get("RequestHost")})
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wait_routed(host, limit=60, at=INGRESS, answered=("", "000", "404")):
    """Until the Traefik at `at` answers for the host with something other than `answered`
    (its own 404, by default)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Host: {host}",
                              f"http://{at}/"], capture_output=True, text=True).stdout
        if out not in answered:
            return
        time.sleep(0.5)
    raise RuntimeError(f"Traefik does not route {host}")


def start_streams(vegeta, ns, vip, app, rate):
    streams = {}
    for path, base, host in (("vip", vip, None), ("ingress", INGRESS, f"{ns}.traffic")):
        for name, tool_name, keepalive, method, h2c in clients(app):
            url_path = app["post"] if method == "POST" else app["get"]
            h = f"{ns}-h2c.traffic" if (h2c and host) else host
            key = f"{path}/{name}/{method}"
            if tool_name == "vegeta":
                streams[key] = Vegeta(vegeta, f"http://{base}{url_path}", method, rate, keepalive, h2c, host=h)
            else:
                streams[key] = StrictLoad(tool("zerodrop"), base, url_path, method, rate, keepalive, host=h)
    return streams


def phase(ns, start, traefik, action, want, replaces=False, tail=2.0):
    """One action under the streams `start()` returns; they keep sending `tail` seconds after the
    pods settled (a lagging load balancer still routes to the gone pods for its lag)."""
    time.sleep(6)  # the previous action's pods finish starting
    timeline = Timeline(ns)
    streams = start()
    time.sleep(3)
    before = {name for name, _, _ in pods(ns)} if replaces else set()
    acted = time.time()
    action()
    settle(ns, want, replaced=before)
    took = time.time() - acted
    time.sleep(tail)
    results = {key: s.stop() for key, s in streams.items()}
    events = timeline.stop()
    for r in results.values():
        for f in r["failures"]:
            f["since_action_ms"] = round(1000 * (f["at"] - acted))
            rel = attribute(f["at"], events)
            if rel:
                f.update(rel)
    return {"acted": acted, "seconds": round(took, 1), "streams": results, "pods": events,
            "traefik_errors": traefik.errors(acted - 5, time.time()) if traefik else []}


def run_cell(label, app, manifests, mode, repeat, rate, vegeta, traefik):
    ns = re.sub(r"[^a-z0-9-]", "-", f"t-{label}-{mode}")[:50].strip("-")
    print(f"{label} {mode}: {ns}", file=sys.stderr)
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    ns_mode, with_policy = SCENARIOS[mode]
    labels = {"zerodrop.dev/mode": ns_mode} if ns_mode else {}
    items = manifests(ns, app.get("policy", {}) if with_policy else {})
    service = next(i for i in items if i["kind"] == "Service")
    warnings = []
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
           *items, *routes(ns, service, app.get("h2c"))], warnings)
    settle(ns, REPLICAS)
    vip = kubectl("-n", ns, "get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}") + \
        f":{service['spec']['ports'][0]['port']}"
    wait_routed(f"{ns}.traffic")
    time.sleep(3)  # kube-proxy programs the new Service
    runs = []
    for i in range(repeat):
        def start():
            return start_streams(vegeta, ns, vip, app, rate)
        restart = phase(ns, start, traefik, lambda: kubectl(
            "-n", ns, "rollout", "restart", "deploy/app"), REPLICAS, replaces=True)
        scale = phase(ns, start, traefik, lambda: kubectl(
            "-n", ns, "scale", "deploy/app", f"--replicas={SCALED}"), SCALED)
        kubectl("-n", ns, "scale", "deploy/app", f"--replicas={REPLICAS}")
        settle(ns, REPLICAS)
        runs.append({"restart": restart, "scale_down": scale})
        print(f"  {label} {mode} run {i + 1}: " + report.brief(restart, scale), file=sys.stderr)
    pod = json.loads(kubectl("-n", ns, "get", "pods", "-o", "json"))["items"][0]
    kubectl("delete", "namespace", ns, "--wait=false")
    return {"app": label, "zerodrop": mode, "runs": runs, "pod": shape(pod), "clients": described(app),
            "warnings": [w for w in warnings if "zerodrop" in w]}


def podinfo_image(podinfo):
    """podinfo as an OCI archive (its static binary alone), imported into the node's containerd."""
    out = os.path.join(os.path.dirname(tool("zerodrop")), "podinfo.tar")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(podinfo):
        subprocess.run([sys.executable, os.path.join(ROOT, "experiments/proof/oci.py"), out, PODINFO,
                        "--entrypoint", '["/podinfo"]', "--user", "65534",
                        f"{os.path.realpath(podinfo)}=/podinfo", "@/tmp"], check=True)
    return out


def import_image(archive):
    sock = os.path.join(NODE_DIR, "node", "containerd", "containerd.sock")
    subprocess.run(["ctr", "--address", sock, "--namespace", "k8s.io", "images", "import", archive],
                   check=True, capture_output=True)


def needs_podinfo(a):
    return not a.manifest and not a.smoke and "podinfo" in a.apps.split(",")


def parser():
    p = argparse.ArgumentParser()
    p.add_argument("--apps", default="podinfo,drain,close-drain,exit")
    p.add_argument("--zerodrop", default="none,enforce,enforce+policy",
                   help="scenarios; enforce+policy runs only for apps that have a policy")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rate", type=int, default=40, help="requests/s of each client on each path")
    p.add_argument("--image", help="your app: an OCI image archive to import, or a reference")
    p.add_argument("--manifest", help="your app: a Deployment and a Service (YAML)")
    p.add_argument("--name", type=app_name, default="yours",
                   help="your app's name in the tables and namespaces (t-NAME-MODE)")
    p.add_argument("--path", default="/")
    p.add_argument("--method", default="GET", choices=["GET", "POST"])
    p.add_argument("--h2c", action="store_true", help="your app speaks h2c")
    p.add_argument("--policy", action="append", default=[], metavar="ANNOTATION=VALUE",
                   help="your app's zerodrop policy for the enforce+policy scenario (repeatable)")
    p.add_argument("--smoke", action="store_true", help="CI: the close-drain app under enforce with "
                   "its policy, once, every client on both paths; fails unless nothing is lost")
    p.add_argument("--json")
    p.add_argument("--write")
    return p


def main():
    p = parser()
    a = p.parse_args()
    # Only what this run sends with and routes through; podinfo only when it is one of the apps.
    needed = ["vegeta", "traefik"] + (["podinfo"] if needs_podinfo(a) else [])
    tools = subprocess.run([os.path.join(ROOT, "tools/traffic/build.sh"), *needed], capture_output=True,
                           text=True, check=True).stdout.strip()
    vegeta = os.path.join(tools, "vegeta")
    install_zerodrop()
    cells = []
    if a.manifest:
        if a.image and os.path.exists(a.image):
            import_image(a.image)
        app = {"get": a.path, "post": a.path, "h2c": a.h2c, "methods": (a.method,)}
        if a.policy:
            app["policy"] = dict(kv.split("=", 1) for kv in a.policy)
        cells.append((a.name, app, lambda ns, ann: user_manifests(ns, a.manifest, ann)))
    else:
        if needs_podinfo(a):
            import_image(podinfo_image(os.path.join(tools, "podinfo")))
        for name in a.apps.split(","):
            cells.append((name, APPS[name], lambda ns, ann, app=APPS[name]: builtin_manifests(ns, app, ann)))
    modes = a.zerodrop.split(",")
    if a.smoke:
        a.repeat, modes = 1, ["enforce+policy"]
        cells = [c for c in cells if c[0] == "close-drain"]
    traefik = Traefik(os.path.join(tools, "traefik"))
    try:
        results = [run_cell(label, app, manifests, mode, a.repeat, a.rate, vegeta, traefik)
                   for label, app, manifests in cells for mode in modes
                   if not SCENARIOS[mode][1] or app.get("policy")]
    finally:
        traefik.stop()
    text = report.tables(results)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"results": results}, f, indent=1)
    if a.write:
        report.write_between(a.write, "traffic", text)
    if a.smoke:
        lost = report.lost(results)
        if lost:
            sys.exit(f"smoke: the close-drain app under enforce lost requests: {lost}")


if __name__ == "__main__":
    main()
