"""When each node's kube-proxy stopped (and started) routing to each pod: its rules, read at every
nftables commit. kube-proxy in either mode commits through nf_tables (iptables here is
iptables-nft), so `nft monitor` announces each of its syncs as a new generation; the rules are
then read and the pod addresses that a DNAT rule names are compared with the last reading."""
import re
import subprocess
import threading
import time

# Pods' addresses (198.18.1.0 and up: node.go's CNI range); below are the bridge and the nodes.
POD_IP = re.compile(r"\b198\.18\.(\d{1,3})\.(\d{1,3})\b")


def targets(text):
    """The pod addresses a DNAT names in a ruleset listing: iptables-save's `-j DNAT
    --to-destination IP:port`, nftables' `dnat to IP:port` or its numgen map `IP . port`."""
    out = set()
    for line in text.splitlines():
        if "dnat" in line.lower():
            out.update(m.group(0) for m in POD_IP.finditer(line) if int(m.group(1)) >= 1)
    return out


def listing(mode):
    """The command that lists what kube-proxy programmed, in its mode."""
    if mode == "nftables":
        return ["nft", "list", "table", "ip", "kube-proxy"]
    return ["iptables-save", "-t", "nat"]


class NodeRules:
    """One node's routing to pods over time: [(when, address, 'add'|'del')]."""

    def __init__(self, name, netns, mode):
        self.name, self.mode = name, mode
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.changes, self.lock, self.pending = [], threading.Lock(), None
        self.wake = threading.Condition(self.lock)
        self.current = self._read() or set()  # a listing raced by a commit: the first compare fills it
        self.proc = subprocess.Popen(self.prefix + ["nft", "monitor"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._follow, daemon=True).start()
        threading.Thread(target=self._compare, daemon=True).start()

    def _read(self):
        out = subprocess.run(self.prefix + listing(self.mode), capture_output=True, text=True)
        return targets(out.stdout) if out.returncode == 0 else None

    def _follow(self):
        # Only reads: a reader that also listed would let the monitor's socket overflow on a
        # burst of commits (100 nodes) and lose the last one.
        for line in self.proc.stdout:
            if line.startswith("# new generation"):
                with self.lock:
                    self.pending = time.time()
                    self.wake.notify()

    def _compare(self):
        while True:
            with self.lock:
                while self.pending is None:
                    self.wake.wait()
                self.pending = None
            seen = self._read()
            if seen is None:  # the table changed while it was listed: list again
                with self.lock:
                    self.pending = self.pending or time.time()
                continue
            # Dated when the listing ended: never earlier than the change (a commit's
            # announcement can reach this process after a listing that already shows it), late
            # by at most two listings (one already running when the commit came, then this one).
            at = time.time()
            with self.lock:
                self.changes += [(at, ip, "del") for ip in self.current - seen]
                self.changes += [(at, ip, "add") for ip in seen - self.current]
                self.current = seen

    def removed(self, ip, after):
        """When this node stopped routing to `ip` (the first removal at or after `after`), or None."""
        with self.lock:
            return next((t for t, a, kind in self.changes if a == ip and kind == "del" and t >= after), None)

    def routes(self, ip):
        with self.lock:
            return ip in self.current

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class ClusterRules:
    """Every node's NodeRules: the real node (the host's namespace) and its client nodes."""

    def __init__(self, nodes, mode):
        self.nodes = [NodeRules(name, netns, mode) for name, netns in nodes]

    def wait_removed(self, ips, limit):
        """Until no node routes to any of `ips`, or `limit` seconds."""
        deadline = time.time() + limit
        while time.time() < deadline and any(n.routes(ip) for n in self.nodes for ip in ips):
            time.sleep(0.2)

    def history(self, ip):
        """Every node's changes for `ip`: {node: [(when, 'add'|'del')]}."""
        out = {}
        for n in self.nodes:
            with n.lock:
                out[n.name] = [(round(t, 3), kind) for t, a, kind in n.changes if a == ip]
        return out

    def convergence(self, pods):
        """For each deleted pod with an address: per node, seconds from its deletion being seen
        to that node's rules no longer naming it (None: still named when the watch ended)."""
        out = []
        for p in pods:
            if "deleted" not in p or "ip" not in p:
                continue
            # When the deletion was requested: seen by the pods' watch, which a busy machine
            # delays, but no later than its endpoint turning not-ready (the slices' watch) nor
            # the end of the second the apiserver stamped it in.
            second = p.get("deletion_second", p["deleted"])
            deleted = min(p["deleted"], p.get("not_ready", p["deleted"]), second + 1.0)
            per_node = {}
            for n in self.nodes:
                t = n.removed(p["ip"], second)
                per_node[n.name] = None if t is None else round(t - deleted, 3)
            out.append({"pod": p["name"], "ip": p["ip"], "nodes": per_node})
        return out

    def stop(self):
        for n in self.nodes:
            n.stop()
