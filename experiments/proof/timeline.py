"""What happened to each pod during an action, on the wall clock: when its deletion was seen,
when it got SIGTERM (its own log where it says so, else deletion + its preStop sleep), when its
endpoint stopped being ready, when it left the EndpointSlice; under the adaptive drain, what its
waiter said of the wait. Failures are then placed relative
to the pod whose termination they fall in."""
import json
import os
import re
import subprocess
import threading
import time
from datetime import datetime

from cluster import KUBECONFIG, tool, watch

# Lines an app writes when it receives SIGTERM, and when it starts to listen: ours and podinfo's.
SIGTERM_LINE = re.compile(r"SIGTERM|Shutting down", re.I)
LISTEN_LINE = re.compile(r"listening on|Starting HTTP Server", re.I)
WAITER = "zerodrop-drain"


def drain_line(text):
    """The waiter's one JSON line per drain (`zerodrop drain-wait --log-format json`): its
    fields, or None for any other line."""
    try:
        line = json.loads(text)
    except ValueError:
        return None
    fields = {**line, **(line.get("fields") or {})} if isinstance(line, dict) else {}
    return fields if fields.get("message") == "drain" and "waited_ms" in fields else None


class Timeline:
    def __init__(self, ns):
        self.ns, self.pods, self.lock, self.slices = ns, {}, threading.Lock(), False
        env = {**os.environ, "KUBECONFIG": KUBECONFIG}
        self.procs = [watch(f"/api/v1/namespaces/{ns}/pods?watch=1", self._pod, self.lock),
                      watch(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?watch=1",
                            self._slice, self.lock)]
        # Each running pod's log, followed: the app's own "SIGTERM" line is the best evidence.
        self.logs, self.waiters = {}, {}
        for name in self._names():
            # Its drain waiter's, if it has one (else kubectl stops at once).
            self.waiters[name] = subprocess.Popen(
                [tool("kubectl"), "-n", ns, "logs", "-f", "-c", WAITER, name], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.logs[name] = subprocess.Popen(
                [tool("kubectl"), "-n", ns, "logs", "-f", "--timestamps", name], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # The watches' initial lists, before any action: a watch that starts late (a busy
        # machine) would see a deletion only in its list, seconds after it happened.
        deadline, names = time.time() + 15, set(self.logs)
        while time.time() < deadline:
            with self.lock:
                if names <= {n for n, p in self.pods.items() if "ip" in p} and self.slices:
                    break
            time.sleep(0.05)

    def _names(self):
        out = subprocess.run([tool("kubectl"), "-n", self.ns, "get", "pods", "-o", "name"],
                             env={**os.environ, "KUBECONFIG": KUBECONFIG}, capture_output=True,
                             text=True).stdout
        return [l.split("/", 1)[1] for l in out.split()]

    def _entry(self, name):
        return self.pods.setdefault(name, {"name": name})

    def _pod(self, event, now):
        obj = event.get("object", {})
        meta = obj.get("metadata", {})
        p = self._entry(meta.get("name", "?"))
        ip = obj.get("status", {}).get("podIP")
        if ip:
            p["ip"] = ip
        if "deletionTimestamp" in meta and "deleted" not in p:
            p["deleted"] = now
            # The deletion request's second: deletionTimestamp is the request plus the grace.
            p["deletion_second"] = rfc3339(meta["deletionTimestamp"]) - meta.get("deletionGracePeriodSeconds", 0)
            hook = (obj["spec"]["containers"][0].get("lifecycle") or {}).get("preStop") or {}
            p["prestop_sleep"] = (hook.get("sleep") or {}).get("seconds", 0)
            if (hook.get("httpGet") or {}).get("path") == "/drain":
                p["prestop_drain"] = True
        if event.get("type") == "DELETED":
            p["removed"] = now

    def _slice(self, event, now):
        self.slices = True
        for ep in event.get("object", {}).get("endpoints") or []:
            name = (ep.get("targetRef") or {}).get("name")
            if not name:
                continue
            p = self._entry(name)
            ready = ep.get("conditions", {}).get("ready")
            if ready is False and "not_ready" not in p:
                p["not_ready"] = now
            if ready and "ready" not in p:
                p["ready"] = now
        present = {(ep.get("targetRef") or {}).get("name")
                   for ep in event.get("object", {}).get("endpoints") or []}
        for name, p in self.pods.items():
            if "deleted" in p and name not in present and "left_slice" not in p:
                p["left_slice"] = now

    def stop(self):
        for proc in self.procs:
            proc.kill()
        for name, proc in self.logs.items():
            proc.kill()
            out = proc.stdout.read()
            for line in out.splitlines():
                stamp, _, text = line.partition(" ")
                if SIGTERM_LINE.search(text):
                    with self.lock:
                        self._entry(name)["sigterm_logged"] = rfc3339(stamp)
                    break
        for name, proc in self.waiters.items():
            proc.kill()
            for line in proc.stdout.read().splitlines():
                fields = drain_line(line)
                if fields:
                    with self.lock:
                        self._entry(name)["drain"] = {k: fields.get(k) for k in (
                            "waited_ms", "ending", "new_connections", "busy_connections", "last_arrival_ms")}
        with self.lock:
            pods = [dict(p) for p in self.pods.values()]
        for p in pods:
            p["existing"] = p["name"] in self.logs
            if "deleted" in p:
                waited = (p.get("drain") or {}).get("waited_ms", 0) / 1000
                p["sigterm"] = p.get("sigterm_logged", p["deleted"] + (p.get("prestop_sleep") or waited))
            elif p["name"] not in self.logs:
                # A pod the action made: when its app said it listens, beside its endpoint's ready.
                out = subprocess.run([tool("kubectl"), "-n", self.ns, "logs", "--timestamps", p["name"]],
                                     env={**os.environ, "KUBECONFIG": KUBECONFIG},
                                     capture_output=True, text=True).stdout
                for line in out.splitlines():
                    stamp, _, text = line.partition(" ")
                    if LISTEN_LINE.search(text):
                        p["listening"] = rfc3339(stamp)
                        break
        return pods


def rfc3339(stamp):
    """UTC RFC 3339, with or without a fraction (kubectl's log stamps, the apiserver's)."""
    date, _, rest = stamp.rstrip("Z").partition(".")
    frac = rest
    return datetime.fromisoformat(date + "+00:00").timestamp() + float("0." + (frac or "0"))


def attribute(failure_at, pods):
    """Where a failure falls: in the termination of the pod with a termination event (deletion,
    endpoint change, SIGTERM) nearest to it, ms relative to each of them; and, when one of the
    action's new pods had joined the endpoints in the 3 s before, ms since it joined and when
    its app started to listen relative to joining. (Which pod a VIP connection went to is not
    recorded; the nearest event is the evidence-backed guess, and the tables say so.)"""
    def distance(p):
        events = [p["deleted"], p["sigterm"]] + ([p["not_ready"]] if "not_ready" in p else [])
        return min(abs(failure_at - e) for e in events)
    gone = [p for p in pods if "deleted" in p and p["deleted"] <= failure_at + 2.0]
    rel = {}
    p = min(gone, key=distance) if gone else None
    if p:
        rel = {"pod": p["name"], "after_deletion_ms": ms(failure_at - p["deleted"]),
               "after_sigterm_ms": ms(failure_at - p["sigterm"])}
        if "not_ready" in p:
            rel["after_endpoint_ms"] = ms(failure_at - p["not_ready"])
    joined = [q for q in pods if not q.get("existing") and "deleted" not in q and "ready" in q
              and 0 <= failure_at - q["ready"] <= 3.0]
    if joined:
        q = max(joined, key=lambda q: q["ready"])
        rel.update({"new_pod": q["name"], "after_new_endpoint_ms": ms(failure_at - q["ready"])})
        if "listening" in q:
            rel["new_listened_after_endpoint_ms"] = ms(q["listening"] - q["ready"])
    return rel or None


def ms(seconds):
    return round(1000 * seconds)
