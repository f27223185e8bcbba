#!/usr/bin/env python3
"""A load balancer whose view of the endpoints lags, as a cloud load balancer's does: Traefik (real,
built here) routing straight to pod addresses, as cloud load balancers in IP mode do, from a file
that a watch of the EndpointSlices rewrites. A pod that becomes ready is added at once (a cloud
load balancer with readiness gates has registered it before the pod counts as ready); a pod that
stops being ready is removed only `lag` seconds later, standing in for the deregistration delay
(about 17 s for an AWS ALB, about 2 min for an NLB, 6-12 s for a GKE L4 load balancer).

Why not Traefik's own `providersThrottleDuration`: its Kubernetes provider applies the first
change after a quiet spell at once and only then sleeps for the throttle, so its lag is anywhere
from 0 to the throttle, and 0 for a lone scale-down: it understates a deregistration delay."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

from cluster import NODE_DIR, ROOT, apply, install_zerodrop, kubectl, settle, watch
from streams import Vegeta
from traffic import APPS, builtin_manifests

LB = "198.18.0.1:8001"


def config(services):
    """Traefik's dynamic configuration: a router per namespace, Host `<ns>.lb`, to its pods."""
    routers, backends = {}, {}
    for ns, servers in sorted(services.items()):
        routers[ns] = {"rule": f"Host(`{ns}.lb`)", "service": ns, "entryPoints": ["lb"]}
        backends[ns] = {"loadBalancer": {"servers": [{"url": f"http://{s}"} for s in sorted(servers)]}}
    return {"http": {"routers": routers, "services": backends}}


class View:
    """The lagging view: per namespace, the ready endpoints now and the removals not yet due."""

    def __init__(self, lag):
        self.lag, self.ready, self.leaving = lag, {}, {}

    def update(self, ns, ready, now):
        """The namespace's ready endpoints as the EndpointSlices say them at `now`."""
        before = self.ready.get(ns, set())
        for gone in before - ready:
            self.leaving.setdefault(ns, {}).setdefault(gone, now + self.lag)
        for back in ready:
            self.leaving.get(ns, {}).pop(back, None)
        self.ready[ns] = set(ready)

    def servers(self, now):
        """What the load balancer routes to at `now`: the ready ones and those still leaving."""
        out = {}
        for ns in set(self.ready) | set(self.leaving):
            due = self.leaving.get(ns, {})
            for addr in [a for a, t in due.items() if t <= now]:
                del due[addr]
            out[ns] = self.ready.get(ns, set()) | set(due)
        return out

    def next_due(self):
        times = [t for due in self.leaving.values() for t in due.values()]
        return min(times) if times else None


def ready_endpoints(slice_obj):
    """`IP:port` of the ready endpoints of one EndpointSlice (its first port)."""
    ports = slice_obj.get("ports") or []
    if not ports:
        return set()
    port = ports[0].get("port")
    return {f"{addr}:{port}" for ep in slice_obj.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready") for addr in ep.get("addresses", [])}


class ConfigFile:
    """Traefik's dynamic configuration file, rewritten only when what it routes to changes: each
    rewrite makes Traefik reload its routers, and a request racing a reload can fail with 502
    (once in a path smoke, 141 ms after an endpoint turned not ready - an event that changes
    nothing for a balancer still routing to the pod for its lag)."""

    def __init__(self, path):
        self.path, self.written = path, None

    def write(self, servers):
        """Writes the configuration for `servers`; False when it is already what the file says."""
        text = json.dumps(config(servers), sort_keys=True)
        if text == self.written:
            return False
        # JSON is YAML; written whole and renamed, so Traefik never reads half a file.
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)
        self.written = text
        return True


class LaggingLB:
    """Traefik on LB with a file provider, and the watch that feeds it the lagging view of the
    Services named `app` in the namespaces `namespaces` returns (checked at each event)."""

    def __init__(self, traefik, lag):
        self.view, self.lock = View(lag), threading.Lock()
        self.slices = {}  # (ns, slice name) -> ready endpoints
        self.dir = os.path.join(NODE_DIR, "lagging-lb")
        os.makedirs(self.dir, exist_ok=True)
        self.file = ConfigFile(os.path.join(self.dir, "dynamic.yaml"))
        self.file.write({})
        self.log = open(os.path.join(NODE_DIR, "lagging-lb.log"), "a")
        self.proc = subprocess.Popen(
            [traefik, f"--entryPoints.lb.address={LB}", f"--providers.file.filename={self.file.path}",
             "--providers.file.watch=true", "--global.checkNewVersion=false",
             "--global.sendAnonymousUsage=false", "--log.level=INFO"],
            stdout=self.log, stderr=self.log)
        self.watch = watch("/apis/discovery.k8s.io/v1/endpointslices?watch=1"
                           "&labelSelector=kubernetes.io%2Fservice-name%3Dapp", self._event, self.lock)
        self.stopped = False
        threading.Thread(target=self._expire, daemon=True).start()

    def _publish(self, now):
        self.file.write(self.view.servers(now))

    def _event(self, event, now):
        obj = event.get("object", {})
        meta = obj.get("metadata", {})
        key = (meta.get("namespace"), meta.get("name"))
        if event.get("type") == "DELETED":
            self.slices.pop(key, None)
        else:
            self.slices[key] = ready_endpoints(obj)
        ready = set().union(*[v for (ns, _), v in self.slices.items() if ns == key[0]])
        self.view.update(key[0], ready, now)
        self._publish(now)

    def _expire(self):
        while not self.stopped:
            with self.lock:
                due = self.view.next_due()
                now = time.time()
                if due is not None and due <= now:
                    self._publish(now)
            time.sleep(0.1)

    def stop(self):
        self.stopped = True
        self.watch.kill()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main():
    """A scale-down from 4 to 2 of the drain app under new connections through the lagging load
    balancer: how many fail, and when after the scale-down (docs/proof.md's table)."""
    p = argparse.ArgumentParser()
    p.add_argument("--lag", type=float, default=15)
    p.add_argument("--zerodrop", choices=["none", "enforce"], default="enforce")
    p.add_argument("--rate", type=int, default=50)
    a = p.parse_args()
    tools = subprocess.run([os.path.join(ROOT, "tools/traffic/build.sh"), "vegeta", "traefik"],
                           capture_output=True, text=True, check=True).stdout.strip()
    install_zerodrop()
    ns = f"lb-{a.zerodrop}"
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s")
    labels = {"zerodrop.dev/mode": "enforce"} if a.zerodrop == "enforce" else {}
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
           *builtin_manifests(ns, APPS["drain"], {})])
    settle(ns, 4)
    lb = LaggingLB(os.path.join(tools, "traefik"), a.lag)
    try:
        time.sleep(3)
        load = Vegeta(os.path.join(tools, "vegeta"), f"http://{LB}/", "GET", a.rate, False, False, host=f"{ns}.lb")
        time.sleep(3)
        acted = time.time()
        kubectl("-n", ns, "scale", "deploy/app", "--replicas=2")
        time.sleep(a.lag + 10)
        r = load.stop()
    finally:
        lb.stop()
    after = [round(f["at"] - acted, 1) for f in r["failures"]]
    span = f"{after[0]} to {after[-1]} s" if after else "-"
    print(f"lag {a.lag:g} s, zerodrop {a.zerodrop}: {r['failed']} of {r['sent']} failed {r['by_kind']}, "
          f"{span} after the scale-down")
    kubectl("delete", "namespace", ns, "--wait=false")
    sys.exit(1 if r["sent"] == 0 else 0)


if __name__ == "__main__":
    main()
