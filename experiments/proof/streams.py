"""The traffic matrix's clients: vegeta (keep-alive HTTP/1.1, h2c, new connections) and
`zerodrop load` (a strict client that retries nothing), each failure classified and put on the
wall clock."""
import json
import os
import signal
import subprocess
import tempfile

# vegeta's error strings (Go's net/http), most specific first.
VEGETA_CLASSES = [
    ("connection refused", "refused"),
    ("connection reset by peer", "reset"),
    ("broken pipe", "reset"),
    ("Client.Timeout", "timeout"),
    ("deadline exceeded", "timeout"),
    ("i/o timeout", "timeout"),
    ("GOAWAY", "stream"),
    ("stream error", "stream"),
    ("http2:", "stream"),
    ("EOF", "eof"),
    ("server closed idle connection", "eof"),
    ("transport connection broken", "eof"),
]
POST_BODY = b'{"zerodrop":"traffic"}'


def inside(netns):
    """The prefix that runs a client inside a client node's network namespace (None: the host),
    so its connections take the path that node's kube-proxy programmed."""
    return ["ip", "netns", "exec", netns] if netns else []


def vegeta_class(code, error):
    if code and not 200 <= code < 300:
        return f"status-{code}"
    for needle, name in VEGETA_CLASSES:
        if needle in error:
            return name
    return "other"


class Vegeta:
    """`vegeta attack` at a fixed rate until stopped (SIGINT), its results encoded as JSON."""

    def __init__(self, vegeta, url, method, rate, keepalive, h2c, timeout="2s", host=None, netns=None):
        self.vegeta, self.dir = vegeta, tempfile.mkdtemp(prefix="zd-vegeta-")
        targets = os.path.join(self.dir, "targets")
        with open(os.path.join(self.dir, "body"), "wb") as f:
            f.write(POST_BODY)
        with open(targets, "w") as f:
            f.write(f"{method} {url}\n")
            if host:
                f.write(f"Host: {host}\n")
            if method == "POST":
                f.write("Content-Type: application/json\n@" + os.path.join(self.dir, "body") + "\n")
        self.out = os.path.join(self.dir, "results.bin")
        args = [vegeta, "attack", f"-rate={rate}/1s", "-duration=0", f"-timeout={timeout}",
                f"-keepalive={str(keepalive).lower()}", "-connections=4", "-redirects=-1",
                f"-targets={targets}", f"-output={self.out}", "-max-body=0"]
        if h2c:
            args.append("-h2c")
        self.proc = subprocess.Popen(inside(netns) + args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        enc = subprocess.run([self.vegeta, "encode", "-to", "json", self.out], capture_output=True,
                             text=True, check=True)
        sent, failures, by_kind, started = 0, [], {}, None
        for line in enc.stdout.splitlines():
            r = json.loads(line)
            sent += 1
            at = parse_time(r["timestamp"])
            started = at if started is None else min(started, at)
            if 200 <= r["code"] < 300 and not r["error"]:
                continue
            kind = vegeta_class(r["code"], r["error"])
            by_kind[kind] = by_kind.get(kind, 0) + 1
            failures.append({"at": at, "kind": kind, "error": r["error"][-120:]})
        return {"sent": sent, "failed": len(failures), "by_kind": by_kind, "failures": failures,
                "started": started}


def parse_time(stamp):
    """RFC 3339 with nanoseconds (Go's) to Unix seconds, without losing the fraction."""
    from datetime import datetime
    date, _, rest = stamp.partition(".")
    frac, zone = rest, "Z"
    for sep in ("Z", "+", "-"):
        if sep in rest:
            i = rest.index(sep)
            frac, zone = rest[:i], rest[i:]
            break
    zone = "+00:00" if zone == "Z" else zone
    base = datetime.fromisoformat(date + zone).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


class StrictLoad:
    """`zerodrop load`: keep-alive or new connections, no retries; stopped by closing stdin."""

    def __init__(self, zerodrop, target, path, method, rate, keepalive, timeout="2s", host=None, netns=None):
        args = [zerodrop, "load", "--target", target, "--path", path, "--method", method.lower(),
                "--rate", str(rate), f"--keepalive={str(keepalive).lower()}", "--connections", "4",
                "--timeout", timeout, "--until-stdin-closes"]
        if host:
            args += ["--host", host]
        self.proc = subprocess.Popen(inside(netns) + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self):
        out, _ = self.proc.communicate(timeout=30)
        s = json.loads(out)
        t0 = s["started_unix_ms"] / 1000
        failures = [{"at": t0 + f["at_ms"] / 1000,
                     "kind": f"status-{f['status']}" if f.get("status") else f["kind"],
                     "reused": f["reused"]} for f in s["failures"]]
        return {"sent": s["sent"], "failed": s["failed"], "by_kind": s["by_kind"],
                "failures": failures, "started": t0}

