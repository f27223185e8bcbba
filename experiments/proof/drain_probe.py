#!/usr/bin/env python3
"""What a terminating pod can see of its own traffic (issue 29's first measurement): one pod of
the drain app, held by a long preStop sleep, is deleted while new connections arrive through the
VIP from the client nodes and requests through Traefik and the lagging load balancer; its network
namespace is read every 100 ms as `nobody` with no capabilities (`ss -tin`, sock_diag), and the
new peers and each established connection's bytes_received are printed per second from the
deletion. Needs `node.sh up --nodes 3` (or more).

usage: drain_probe.py [--lag 8] [--sleep 20]
"""
import argparse
import json
import os
import subprocess
import sys
import time

from cluster import ROOT, apply, install_zerodrop, kubectl, settle, topology
from lagging_lb import LB, LaggingLB
from streams import Vegeta
from traffic import APPS, INGRESS, Traefik, builtin_manifests, routes, wait_routed

NS = "drain-probe"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def pod_netns(ip):
    """The newest CNI network namespace that holds `ip` (a gone pod's, with the same address,
    may still be torn down)."""
    held = [name for name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if name.startswith("cni-") and f" {ip}/" in subprocess.run(
                ["ip", "netns", "exec", name, "ip", "-4", "addr"], capture_output=True, text=True).stdout]
    if not held:
        raise RuntimeError(f"no network namespace holds {ip}")
    return max(held, key=lambda name: os.path.getmtime(f"/var/run/netns/{name}"))


def sockets(netns, port):
    """{peer: bytes_received or None} of every TCP socket on `port` (TIME-WAIT too), as nobody."""
    run = subprocess.run(["ip", "netns", "exec", netns, *NOBODY, "ss", "-tinaH", "sport", "=", f":{port}"],
                         capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"ss in {netns}: {run.stderr.strip()}")
    return parse_ss(run.stdout)


def parse_ss(text):
    """`ss -tinaH`'s sockets: {peer: bytes_received (its indented info line), None without}."""
    lines, found = text.splitlines(), {}
    for i, line in enumerate(lines):
        fields = line.split()
        if line[:1].isspace() or len(fields) < 5 or fields[0] == "LISTEN":
            continue
        info = lines[i + 1] if i + 1 < len(lines) and lines[i + 1][:1].isspace() else ""
        got = [f.split(":", 1)[1] for f in info.split() if f.startswith("bytes_received:")]
        found[fields[-1]] = int(got[0]) if got else None
    return found


def new_peers(samples, deleted):
    """{second after the deletion (-1: before it): {source address: peers first seen then}}."""
    first, out = {}, {}
    for at, socks in samples:
        for peer in socks:
            first.setdefault(peer, at)
    for peer, at in first.items():
        second = int(at - deleted) if at >= deleted else -1
        source = peer.rsplit(":", 1)[0]
        out.setdefault(second, {})[source] = out.get(second, {}).get(source, 0) + 1
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lag", type=float, default=8)
    p.add_argument("--sleep", type=int, default=20)
    a = p.parse_args()
    nodes, _ = topology()
    tools = subprocess.run([os.path.join(ROOT, "tools/traffic/build.sh"), "vegeta", "traefik"],
                           capture_output=True, text=True, check=True).stdout.strip()
    install_zerodrop()
    kubectl("delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    items = builtin_manifests(NS, APPS["drain"], {**APPS["drain"]["policy"],
                                                  "zerodrop.dev/prestop-sleep": f"{a.sleep}s"})
    apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"zerodrop.dev/mode": "enforce"}}},
           *items, *routes(NS, items[1], False)])
    settle(NS, 4)
    vip = kubectl("-n", NS, "get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}") + ":80"
    traefik, lb = Traefik(os.path.join(tools, "traefik")), LaggingLB(os.path.join(tools, "traefik"), a.lag)
    vegeta, loads = os.path.join(tools, "vegeta"), []
    try:
        wait_routed(f"{NS}.traffic")
        wait_routed(f"{NS}.lb", at=LB, answered=("", "000", "404", "503"))
        loads = [Vegeta(vegeta, f"http://{vip}/", "GET", 20, False, False, netns=n) for _, n in nodes if n]
        loads += [Vegeta(vegeta, f"http://{INGRESS}/", "GET", 20, False, False, host=f"{NS}.traffic"),
                  Vegeta(vegeta, f"http://{LB}/", "GET", 20, False, False, host=f"{NS}.lb")]
        time.sleep(4)
        pod = json.loads(kubectl("-n", NS, "get", "pods", "-o", "json"))["items"][0]
        hook = (pod["spec"]["containers"][0].get("lifecycle") or {}).get("preStop")
        if hook != {"sleep": {"seconds": a.sleep}}:
            sys.exit(f"the pod is not held by a {a.sleep} s preStop sleep: {hook}")
        netns, port = pod_netns(pod["status"]["podIP"]), APPS["drain"]["port"]
        samples, deleted = [], None
        end = time.time() + a.sleep + 8
        while time.time() < end:
            if deleted is None and len(samples) >= 20:
                kubectl("-n", NS, "delete", "pod", pod["metadata"]["name"], "--wait=false")
                deleted = time.time()
            try:
                samples.append((time.time(), sockets(netns, port)))
            except RuntimeError:
                if deleted is None:
                    raise
                break  # the pod is gone: its sleep ended and the app exited
            time.sleep(0.1)
    finally:
        for load in loads:
            load.stop()
        traefik.stop()
        lb.stop()
    new = new_peers(samples, deleted)
    print("new peers first seen, by second after the deletion (-1: before), by source address")
    for second in sorted(new):
        print(f"  {second:>3} s: {new[second]}")
    print("established connections' bytes_received, every second after the deletion")
    for peer in sorted({p for _, s in samples for p, b in s.items() if b is not None}):
        row = [f"{round(at - deleted):>3}:{s.get(peer) if s.get(peer) is not None else '-'}" for at, s in samples[::10]]
        print(f"  {peer:<22}", " ".join(row))
    kubectl("delete", "namespace", NS, "--wait=false")


if __name__ == "__main__":
    sys.exit(main())
