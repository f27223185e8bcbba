#!/usr/bin/env python3
"""Formats experiments/benchmarks/run.sh results as Markdown tables with zerodrop/baseline ratios."""
import json
import os
import re
import sys


def criterion(root):
    """{(bench, size): median_us} from criterion's estimates."""
    out = {}
    base = os.path.join(root, "admission")
    if not os.path.isdir(base):
        return out
    for bench in os.listdir(base):
        for label in os.listdir(os.path.join(base, bench)):
            path = os.path.join(base, bench, label, "new", "estimates.json")
            if os.path.exists(path):
                with open(path) as f:
                    out[(bench, label)] = json.load(f)["median"]["point_estimate"] / 1000.0
    return out


def ratio(a, b):
    return f"{a / b:.2f}" if b and b > 0 else "-"


def main(results_path, criterion_root):
    rows = [json.loads(line) for line in open(results_path) if line.strip()]
    crit = criterion(criterion_root)
    lines = ["### Admission path per request (criterion, median)", "",
             "| review | parse | floor | engine | full handle | full/floor | full/generic floor | full, cache miss | miss/floor | full, cache hit | cached/floor |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    sizes = sorted({label for (_, label) in crit}, key=lambda l: int(re.sub(r"\D", "", l.split("-")[1])))
    for label in sizes:
        g = lambda b: crit.get((b, label), 0.0)
        lines.append(f"| {label} | {g('parse'):.1f} µs | {g('floor'):.1f} µs | {g('evaluate'):.1f} µs | {g('full'):.1f} µs "
                     f"| {ratio(g('full'), g('floor'))} | {ratio(g('full'), g('floor-full-tree'))} "
                     f"| {g('full-miss'):.1f} µs | {ratio(g('full-miss'), g('floor'))} "
                     f"| {g('full-cached'):.1f} µs | {ratio(g('full-cached'), g('floor'))} |")
    lines += ["", "floor = decode the AdmissionReview (zerodrop's lean request type) + serialise an allowed response;",
              "generic floor = the same with the whole object parsed into a JSON tree (what a typical webhook does);",
              "full handle = no decision cache; cache miss = the server's first pod of a template (evaluated, then stored);",
              "cache hit = the same review again (a rollout's pods are identical at admission), the server's default.", ""]
    if any(b == "full-cached-images" for (b, _) in crit):
        lines += ["#### With image inspection on (facts from the inspector's cache, as /mutate uses them)", "",
                  "| review | cache hit | cache hit, with image facts | ratio | cache miss | cache miss, with image facts | ratio |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for label in sizes:
            g = lambda b: crit.get((b, label), 0.0)
            lines.append(f"| {label} | {g('full-cached'):.1f} µs | {g('full-cached-images'):.1f} µs | {ratio(g('full-cached-images'), g('full-cached'))} "
                         f"| {g('full-miss'):.1f} µs | {g('full-miss-images'):.1f} µs | {ratio(g('full-miss-images'), g('full-miss'))} |")
        lines += ["", "Measured side by side in one run; an image not yet in the inspector's cache costs the /mutate request",
                  "nothing more (it is inspected in the background), a registry's time is the inspection's (image_inspection_duration_seconds).", ""]
    if any(b == "evaluate-compliant" for (b, _) in crit):
        lines += ["#### Where the uncached full handle goes", "",
                  "| review | decode | decide (pod needing no change) | decide and build this pod's patch | encode the patch | the rest (response, outcome) | full handle |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for label in sizes:
            g = lambda b: crit.get((b, label), 0.0)
            rest = g("full") - g("parse") - g("evaluate") - g("encode-patch")
            lines.append(f"| {label} | {g('parse'):.1f} µs | {g('evaluate-compliant'):.1f} µs | {g('evaluate'):.1f} µs "
                         f"| {g('encode-patch'):.1f} µs | {rest:.1f} µs | {g('full'):.1f} µs |")
        lines += ["", "decide (pod needing no change) = the same pod with zerodrop's patch applied: the cost of the rules alone;",
                  "the difference to the next column is building the patch operations (copied fields, diff, ledger).", ""]

    if any(b == "full-adaptive" for (b, _) in crit):
        lines += ["#### The adaptive drain's patch beside the sleep's (same pods, same run)", "",
                  "| review | decide: sleep | decide: adaptive | ratio | encode: sleep | encode: adaptive | ratio | full: sleep | full: adaptive | ratio |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label in sizes:
            g = lambda b: crit.get((b, label), 0.0)
            lines.append(f"| {label} | {g('evaluate'):.1f} µs | {g('evaluate-adaptive'):.1f} µs | {ratio(g('evaluate-adaptive'), g('evaluate'))} "
                         f"| {g('encode-patch'):.1f} µs | {g('encode-patch-adaptive'):.1f} µs | {ratio(g('encode-patch-adaptive'), g('encode-patch'))} "
                         f"| {g('full'):.1f} µs | {g('full-adaptive'):.1f} µs | {ratio(g('full-adaptive'), g('full'))} |")
        lines += ["", "full = no decision cache; a rollout's pods after the first are answered from it either way.", ""]

    idle = next((r["idle_rss_kb"] for r in rows if "idle_rss_kb" in r), {})
    load = [r for r in rows if r.get("kind") == "load"]
    lines += ["### Server under load (typical 8 KB review, keep-alive TLS on loopback)", "",
              "| connections | server | req/s | p50 | p99 | p99.9 | CPU/req | peak RSS | errors |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    by = {(r["who"], r["connections"]): r for r in load}
    for c in sorted({r["connections"] for r in load}):
        for who in ["baseline", "zerodrop"]:
            r = by.get((who, c))
            if not r:
                continue
            res = r["result"]
            cpu = r["cpu_ticks"] * 10000.0 / max(res["requests"], 1)
            lines.append(f"| {c} | {who} | {res['rps']:.0f} | {res['p50_us']} µs | {res['p99_us']} µs | {res['p999_us']} µs "
                         f"| {cpu:.1f} µs | {r['peak_rss_kb'] / 1024:.1f} MiB | {res['errors']} |")
        z, b = by.get(("zerodrop", c)), by.get(("baseline", c))
        if z and b:
            zc = z["cpu_ticks"] / max(z["result"]["requests"], 1)
            bc = b["cpu_ticks"] / max(b["result"]["requests"], 1)
            lines.append(f"| {c} | **zerodrop/baseline** | **{ratio(z['result']['rps'], b['result']['rps'])}** "
                         f"| {ratio(z['result']['p50_us'], b['result']['p50_us'])} | {ratio(z['result']['p99_us'], b['result']['p99_us'])} "
                         f"| {ratio(z['result']['p999_us'], b['result']['p999_us'])} | {ratio(zc, bc)} "
                         f"| {ratio(z['peak_rss_kb'], b['peak_rss_kb'])} | |")
    if idle:
        lines += ["", f"Idle RSS: zerodrop {idle['zerodrop'] / 1024:.1f} MiB, baseline {idle['baseline'] / 1024:.1f} MiB."]

    fresh = {r["who"]: r["result"] for r in rows if r.get("kind") == "fresh"}
    if fresh:
        lines += ["", "### First request on a new TLS connection (connect + handshake + request)", "",
                  "| server | p50 | p99 |", "| --- | --- | --- |"]
        for who in ["baseline", "zerodrop"]:
            if who in fresh:
                lines.append(f"| {who} | {fresh[who]['p50_us']} µs | {fresh[who]['p99_us']} µs |")

    e2e = next((r["result"] for r in rows if r.get("kind") == "e2e"), None)
    if e2e:
        lines += ["", "### Pod create through the real apiserver (server-side dry-run)", "",
                  "| | p50 | p99 |", "| --- | --- | --- |",
                  f"| webhook not called | {e2e['without_p50_us']} µs | {e2e['without_p99_us']} µs |",
                  f"| zerodrop registered | {e2e['with_p50_us']} µs | {e2e['with_p99_us']} µs |",
                  f"| **added** | **{e2e['with_p50_us'] - e2e['without_p50_us']} µs** | **{e2e['with_p99_us'] - e2e['without_p99_us']} µs** |"]
        if "again_p50_us" in e2e:
            # A/A: a second namespace the webhook does not see; any difference is the machine.
            lines += [f"| webhook not called, second namespace | {e2e['again_p50_us']} µs | {e2e['again_p99_us']} µs |",
                      f"| noise (A/A difference) | {e2e['again_p50_us'] - e2e['without_p50_us']} µs | {e2e['again_p99_us'] - e2e['without_p99_us']} µs |"]
        if "null_p50_us" in e2e:
            # The baseline server as a webhook: allowed, no patch. What any webhook costs.
            lines += [f"| a webhook that only answers allowed (testkit/src/bin/baseline.rs) | {e2e['null_p50_us']} µs | {e2e['null_p99_us']} µs |",
                      f"| zerodrop beyond any webhook (registered − null webhook) | {e2e['with_p50_us'] - e2e['null_p50_us']} µs | {e2e['with_p99_us'] - e2e['null_p99_us']} µs |"]
    print("\n".join(lines))


def peers_table(run):
    """The Peers table of testkit/src/bin/peers_bench.rs: each arm's cost over no mutation, and the headline ratios."""
    arms = run["arms"]
    none = arms[0]
    added = lambda a, k: a[k] - none[k]
    fmt_cpu = lambda v: "-" if v is None else f"{v:.2f} s"
    fmt_mib = lambda v: "-" if v is None else f"{v / 1024:.0f} MiB"
    lines = ["### Peers: the same mutation by zerodrop, Kyverno and the in-tree policy (one apiserver, one run)", "",
             f"Dry-run: {run['iterations']} creates per arm, interleaved. CPU: {run['admissions']} admissions per arm, arms in turn. "
             f"Burst: a Deployment of {run['burst']} pods created by kube-controller-manager, twice per arm, per-pod create latency from the apiserver's audit log.", "",
             "| arm | dry-run p50 | p99 | added p50 | added p99 | CPU per 1,000 (its process) | apiserver CPU per 1,000 | RSS (peak) "
             "| burst create p50 | p99 | Deployment to last pod |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for a in arms:
        rss = "-" if a["rss_kb"] is None else f"{fmt_mib(a['rss_kb'])} ({fmt_mib(a['peak_rss_kb'])})"
        lines.append(f"| {a['name']} | {a['p50_us']} µs | {a['p99_us']} µs | {added(a, 'p50_us')} µs | {added(a, 'p99_us')} µs "
                     f"| {fmt_cpu(a['process_cpu_s_per_1000'])} | {fmt_cpu(a['apiserver_cpu_s_per_1000'])} | {rss} "
                     f"| {a['burst_p50_us']} µs | {a['burst_p99_us']} µs | {a['burst_all_created_ms'] / 1000:.2f} s |")
    # Each zerodrop arm (without and with the traffic path index) and the webhook that only
    # answers allowed (what calling any webhook costs) against each policy engine.
    ours = [a for a in arms if a["name"].startswith("zerodrop") or a["name"].startswith("a webhook that only")]
    heads = []
    for zd in ours:
        for a in arms:
            if a is not zd and a["name"].endswith(("ClusterPolicy", "MutatingPolicy", "MutatingAdmissionPolicy")):
                heads.append(f"| {zd['name']}: added / {a['name']}'s added | {ratio(added(zd, 'p50_us'), added(a, 'p50_us'))} "
                             f"| **{ratio(added(zd, 'p99_us'), added(a, 'p99_us'))}** "
                             f"| {ratio(zd['burst_p99_us'] - none['burst_p99_us'], a['burst_p99_us'] - none['burst_p99_us'])} |")
    if heads:
        lines += ["", "| headline | dry-run p50 | dry-run p99 | burst p99 |", "| --- | --- | --- | --- |"] + heads
    if run.get("wide"):
        # The export's CEL grows with the containers; so does the webhook's work (and body).
        lines += ["", "| containers in the pod | no mutation p50 | webhook added p50 | exported policy added p50 | policy / webhook (added) | policy mutated every container |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for w in run["wide"]:
            hook, cel = w["webhook_p50_us"] - w["none_p50_us"], w["export_p50_us"] - w["none_p50_us"]
            lines.append(f"| {w['containers']} | {w['none_p50_us']} µs | {hook} µs | {cel} µs "
                         f"| {ratio(cel, hook)} | {'yes' if w['export_mutated'] else '**no**'} |")
    return lines


def update_section(doc, marker, table_path):
    """Replaces <!-- MARKER:start --> ... <!-- MARKER:end --> in doc with the file's text."""
    text = open(doc).read()
    table = open(table_path).read().strip()
    pattern = rf"<!-- {marker}:start -->.*<!-- {marker}:end -->"
    assert re.search(pattern, text, flags=re.S), f"{doc} has no {marker} markers"
    open(doc, "w").write(re.sub(pattern, lambda _: f"<!-- {marker}:start -->\n{table}\n<!-- {marker}:end -->", text, flags=re.S))


if __name__ == "__main__":
    if sys.argv[1] == "--update-doc":
        update_section(sys.argv[2], "bench", sys.argv[3])
    elif sys.argv[1] == "--peers":
        rows = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
        peers = next((r["result"] for r in rows if r.get("kind") == "peers"), None)
        print("\n".join(peers_table(peers)) if peers else "")
    elif sys.argv[1] == "--update-section":
        update_section(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main(sys.argv[1], sys.argv[2])
