"""The cluster matrix's tables: failures per app, zerodrop setting, path and client for each
topology; where they fall in the terminating pod's life; the prestop-sleep sweep's smallest safe
value per path."""
from collections import Counter

from report import ACTIONS, classes, spread

PATHS = (("vip", "Service VIP, from every node"), ("ingress", "Traefik Ingress"),
         ("lb", "lagging load balancer"))
CLIENTS = ("new", "keepalive", "strict")


def path_of(key):
    """`vip` for `vip:c3/new/GET`; the client; the node (None off the VIP path)."""
    path, client, _ = key.split("/")
    base, _, node = path.partition(":")
    return base, client, node or None


def streams(cell):
    """Every stream result of the cell, with its key, over runs and actions."""
    for run in cell["runs"]:
        for action, _ in ACTIONS:
            for key, s in run[action]["streams"].items():
                yield key, s


def totals(cell):
    """{(path, client): [failed, sent, nodes that saw a failure]}."""
    out = {}
    for key, s in streams(cell):
        path, client, node = path_of(key)
        t = out.setdefault((path, client), [0, 0, set()])
        t[0] += s["failed"]
        t[1] += s["sent"]
        if s["failed"] and node:
            t[2].add(node)
    return out


def topo(run):
    return f"{run['nodes']} {run['mode']}"


def matrix(runs):
    """Rows: app, zerodrop, path; columns: topologies; cells: failures of new / keep-alive / strict."""
    runs = sorted([r for r in runs if not r.get("sweep")], key=lambda r: (r["nodes"], r["mode"]))
    if not runs:
        return "(no matrix runs)"
    tops = [topo(r) for r in runs]
    rows = {}
    sent = {}
    for r in runs:
        for c in r["cells"]:
            for (path, client), (failed, n, nodes) in totals(c).items():
                row = rows.setdefault((c["app"], c["zerodrop"], path), {})
                row.setdefault(topo(r), {})[client] = (failed, nodes)
                sent.setdefault(path, []).append(n // (r["nodes"] if path == "vip" else 1))
    lines = ["| app | zerodrop | path | " + " | ".join(f"{t} nodes" for t in tops) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in tops) + " |"]
    order = {p: i for i, (p, _) in enumerate(PATHS)}
    for (app, setting, path) in sorted(rows, key=lambda k: (k[0], k[1] != "none", order.get(k[2], 9))):
        row = rows[(app, setting, path)]
        cells = []
        for t in tops:
            got = row.get(t)
            if not got:
                cells.append("-")
                continue
            text = " / ".join(str(got[c][0]) if c in got else "-" for c in CLIENTS)
            nodes = set().union(*[got[c][1] for c in CLIENTS if c in got])
            if path == "vip" and nodes:
                text += f" ({len(nodes)} node{'s' if len(nodes) > 1 else ''})"
            cells.append(text)
        lines.append(f"| {app} | {setting} | {path} | " + " | ".join(cells) + " |")
    caption = "; ".join(f"{path}{' (per node)' if path == 'vip' else ''} {min(n):,}–{max(n):,}"
                        for path, n in sorted(sent.items()))
    return "\n".join(lines) + f"\n\nRequests each client sent per cell (restart + scale-down): {caption}."


def placement(runs):
    """Per path, app, zerodrop and failure class: how many, and when after the nearest
    terminating pod's SIGTERM and its endpoint turning not-ready."""
    spans = {}
    for r in runs:
        if r.get("sweep"):
            continue
        for c in r["cells"]:
            for key, s in streams(c):
                path, _, _ = path_of(key)
                for f in s["failures"]:
                    spans.setdefault((path, c["app"], c["zerodrop"], f["kind"]), []).append(f)
    lines = ["| path | app | zerodrop | class | failures | ms after the pod's SIGTERM "
             "| ms after its endpoint turned not-ready | ms after its deletion |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (path, app, setting, kind), fs in sorted(spans.items()):
        lines.append(f"| {path} | {app} | {setting} | {kind} | {len(fs)} | {spread(fs, 'after_sigterm_ms')} "
                     f"| {spread(fs, 'after_endpoint_ms')} | {spread(fs, 'after_deletion_ms')} |")
    return "\n".join(lines)


def safe_sleep(by_sleep):
    """The smallest swept sleep from which every larger swept sleep lost nothing (None: none)."""
    best = None
    for sleep in sorted(by_sleep, reverse=True):
        if by_sleep[sleep]:
            break
        best = sleep
    return best


def sweep(runs):
    """Per path: failures at each swept prestop-sleep, `new connections (all clients)`, and the
    smallest safe sleep by each. New connections are what routing decides (a kept connection is
    pinned to its pod whatever the sleep: its failures at SIGTERM are the app's way of closing)."""
    out = []
    for r in sorted([r for r in runs if r.get("sweep")], key=lambda r: (r["cells"][0]["app"] != "drain", r["nodes"], r["mode"])):
        new, every = {}, {}
        for c in r["cells"]:
            sleep = int(c["zerodrop"].split("=")[1])
            for (path, client), (failed, _, _) in totals(c).items():
                every.setdefault(path, {}).setdefault(sleep, 0)
                every[path][sleep] += failed
                new.setdefault(path, {}).setdefault(sleep, 0)
                new[path][sleep] += failed if client == "new" else 0
        sleeps = sorted({s for v in every.values() for s in v})
        out += [f"{topo(r)} nodes, the {r['cells'][0]['app']} app, lagging load balancer {r['lag']:g} s; "
                "failed requests, new connections (all clients):", "",
                "| path | " + " | ".join(f"{s} s" for s in sleeps) + " | smallest safe: new connections (all clients) |",
                "| --- | " + " | ".join("---" for _ in sleeps) + " | --- |"]
        for path, _ in PATHS:
            if path in every:
                safe = [safe_sleep(x[path]) for x in (new, every)]
                said = [("none swept" if b is None else f"{b} s") for b in safe]
                out.append(f"| {path} | " + " | ".join(f"{new[path].get(s, '-')} ({every[path].get(s, '-')})"
                                                      for s in sleeps) + f" | {said[0]} ({said[1]}) |")
        out.append("")
    return "\n".join(out).strip() or "(no sweep runs)"


def parts(runs):
    """What --write puts between docs' markers."""
    return {"matrix": matrix(runs), "placement": placement(runs), "sweep": sweep(runs)}


def document(runs):
    return "\n\n".join([*parts(runs).values(), rollouts(runs)])


def rollouts(runs):
    """Each cell on one line: failed / sent per path (every client, restart and scale-down
    together), how long each action took from the action to settled pods, and under the
    adaptive drain what the waiters waited and how their waits ended (docs/proof.md's tables)."""
    lines = ["| nodes | app | zerodrop | " + " | ".join(p for p, _ in PATHS)
             + " | restart | scale-down | drain waits | endings |",
             "| --- | --- | --- | " + " | ".join("---" for _ in PATHS) + " | --- | --- | --- | --- |"]
    for r in runs:
        for c in r["cells"]:
            per_path = {}
            for (path, _), (failed, sent, _) in totals(c).items():
                t = per_path.setdefault(path, [0, 0])
                t[0] += failed
                t[1] += sent
            sent = " | ".join(f"{per_path[p][0]:,} / {per_path[p][1]:,}" if p in per_path else "-"
                              for p, _ in PATHS)
            took = {a: ", ".join(f"{run[a]['seconds']:.1f}" for run in c["runs"]) for a, _ in ACTIONS}
            w = waits(c)
            endings = Counter(e for p in deleted(c) if (e := (p.get("drain") or {}).get("ending")))
            lines.append(f"| {topo(r)} | {c['app']} | {c['zerodrop']} | {sent} "
                         f"| {took['restart']} s | {took['scale_down']} s "
                         f"| {f'{w[0]:.1f}-{w[1]:.1f} s' if w else '-'} "
                         f"| {', '.join(f'{k} {n}' for k, n in sorted(endings.items())) or '-'} |")
    return "\n".join(lines)


def deleted(cell):
    return [p for run in cell["runs"] for action, _ in ACTIONS for p in run[action].get("pods", [])
            if "deleted" in p]


def unhooked(cell):
    """The pods the cell's actions deleted without a preStop sleep or drain call (the timeline's
    record of each as the apiserver had it), by name."""
    return sorted(p["name"] for p in deleted(cell) if not p.get("prestop_sleep") and not p.get("prestop_drain"))


def undrained(cell):
    """Pods deleted under the adaptive drain whose waiter did not measure the wait (no drain
    line, or it fell back to the sleep), by name and why."""
    out = []
    for p in deleted(cell):
        ending = (p.get("drain") or {}).get("ending")
        if not p.get("prestop_drain") or ending in (None, "fallback"):
            out.append(f"{p['name']} ({'no drain call' if not p.get('prestop_drain') else ending or 'no drain line'})")
    return sorted(out)


def waits(cell):
    """The waiters' waits of a cell, s: (min, max), or None."""
    w = [p["drain"]["waited_ms"] / 1000 for p in deleted(cell) if (p.get("drain") or {}).get("waited_ms") is not None]
    return (min(w), max(w)) if w else None


def smoke_problem(result):
    """CI's multi-node cell: new connections through every node's kube-proxy must fail without
    zerodrop (the instrument sees the race) and never with it; every node's clients must send;
    under enforce every pod deleted must have carried zerodrop's sleep (the first pods of a new
    namespace included: the cell applies the namespace with its Deployment, as users do)."""
    by = {c["zerodrop"]: c for c in result["cells"]}
    escaped = unhooked(by["enforce"])
    if escaped:
        return f"pods deleted under enforce without zerodrop's preStop sleep: {escaped}"
    for setting in (s for s in by if s.startswith("adaptive")):
        missed = undrained(by[setting])
        if missed:
            return f"{setting}: pods deleted without a measured drain: {missed}"
        failed = sum(s["failed"] for key, s in streams(by[setting]) if path_of(key)[1] == "new")
        if failed:
            return f"{setting}: {failed} new connections failed"
    lost = {}
    for setting in ("none", "enforce"):
        per_node = {}
        for key, s in streams(by[setting]):
            path, client, node = path_of(key)
            if path == "vip" and client == "new":
                got = per_node.setdefault(node, [0, 0])
                got[0] += s["failed"]
                got[1] += s["sent"]
        silent = sorted(n for n, (_, sent) in per_node.items() if not sent)
        if len(per_node) != result["nodes"] or silent:
            return f"{setting}: expected {result['nodes']} nodes sending, got {sorted(per_node)} (silent: {silent})"
        lost[setting] = {n: f for n, (f, _) in per_node.items()}
    if not sum(lost["none"].values()):
        return f"no new connection failed without zerodrop ({lost}): the cell cannot tell"
    if sum(lost["enforce"].values()):
        failures = [f for key, s in streams(by["enforce"]) if path_of(key)[1] == "new" for f in s["failures"]]
        return f"new connections failed under enforce: {lost['enforce']} ({classes(failures)})"
    return None


def path_smoke_problem(result, delay):
    """CI's traffic path cell: behind the lagging balancer the plain sleep must lose (the
    instrument sees the lag) and the Service marked with a balancer class must lose nothing,
    every pod deleted there carrying the class's `delay`."""
    by = {c["zerodrop"]: c for c in result["cells"]}
    marked = next(s for s in by if s.startswith("path="))
    lost = {setting: sum(s["failed"] for key, s in streams(by[setting]) if path_of(key)[0] == "lb")
            for setting in ("enforce", marked)}
    sent = sum(s["sent"] for key, s in streams(by[marked]) if path_of(key)[0] == "lb")
    short = sorted(p["name"] for p in deleted(by[marked]) if (p.get("prestop_sleep") or 0) < delay)
    if short:
        return f"{marked}: pods deleted with less than the class's {delay} s sleep: {short}"
    if not sent:
        return f"{marked}: nothing was sent behind the balancer"
    if not lost["enforce"]:
        return f"the 5 s sleep lost nothing behind the lagging balancer ({lost}): the cell cannot tell"
    if lost[marked]:
        return f"{marked} lost {lost[marked]} requests behind the balancer ({lost})"
    return None

