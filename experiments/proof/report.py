"""The traffic matrix's tables: failed / sent per app, zerodrop mode, path and client, and each
failure class with where it falls in the termination of the pod it hit."""
import argparse
import json
import re
import statistics
import sys


ACTIONS = (("restart", "restarts"), ("scale_down", "scale-downs"))


def brief(restart, scale):
    def one(ph):
        lost = {k: r["failed"] for k, r in ph["streams"].items() if r["failed"]}
        return f"{sum(r['failed'] for r in ph['streams'].values())} failed {lost or ''} {ph['seconds']}s"
    return f"restart {one(restart)}, scale-down {one(scale)}"


def streams_of(result):
    """Stream keys in a stable order: path, then the order the clients ran in."""
    keys = []
    for run in result["runs"]:
        for key in run["restart"]["streams"]:
            if key not in keys:
                keys.append(key)
    return keys


def classes(failures):
    counts = {}
    for f in failures:
        counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "-"


def tables(results):
    ran = {}
    for r in results:
        ran.setdefault(r["app"], r.get("clients"))
    lines = [f"Clients of {app} on each path: {', '.join(c)}." for app, c in ran.items() if c]
    lines += [""] if lines else []
    lines += ["| app | zerodrop | path | client | method | restarts: failed / sent "
             "| scale-downs: failed / sent | failures by class |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    spans = {}
    for r in results:
        for key in streams_of(r):
            path, client, method = key.split("/")
            cells, all_failures = [], []
            for action, _ in ACTIONS:
                per = [run[action]["streams"][key] for run in r["runs"]]
                cells.append(" + ".join(str(x["failed"]) for x in per) + f" / {sum(x['sent'] for x in per)}")
                for x in per:
                    all_failures.extend(x["failures"])
            lines.append(f"| {r['app']} | {r['zerodrop']} | {path} | {client} | {method} | {cells[0]} "
                         f"| {cells[1]} | {classes(all_failures)} |")
            for f in all_failures:
                spans.setdefault((f["kind"], r["app"], r["zerodrop"], path), []).append(f)
    lines += ["", "| class | app | zerodrop | path | failures | ms after the nearest terminating pod's "
              "SIGTERM | ... after its endpoint turned not-ready | ms after a new pod joined the endpoints "
              "(it listened ms after joining) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (kind, app, mode, path), fs in sorted(spans.items()):
        joined = spread(fs, "after_new_endpoint_ms")
        if joined != "-":
            joined += f" ({spread(fs, 'new_listened_after_endpoint_ms')})"
        new = sum(1 for f in fs if "new_pod" in f)
        lines.append(f"| {kind} | {app} | {mode} | {path} | {len(fs)} | {spread(fs, 'after_sigterm_ms')} "
                     f"| {spread(fs, 'after_endpoint_ms')} | {f'{new}: ' if new else ''}{joined} |")
    return "\n".join(lines)


def spread(failures, key):
    xs = [f[key] for f in failures if key in f]
    if not xs:
        return "-"
    return f"{min(xs)} .. {max(xs)} (median {round(statistics.median(xs))})"


def lost(results):
    out = {}
    for r in results:
        for run in r["runs"]:
            for action, _ in ACTIONS:
                for key, s in run[action]["streams"].items():
                    if s["failed"]:
                        out[f"{r['app']}/{r['zerodrop']}/{key}/{action}"] = s["failed"]
    return out


def write_between(path, name, text):
    """Replaces the text between the file's NAME markers; a file without them is left as it was."""
    with open(path) as f:
        new = between_markers(f.read(), name, text)
    with open(path, "w") as f:
        f.write(new)


def between_markers(doc, name, text):
    """The document with the text between its <!-- NAME:start/end --> markers replaced."""
    new, n = re.subn(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)",
                     lambda m: m.group(1) + text + "\n" + m.group(2), doc, flags=re.S)
    if n != 1:
        raise SystemExit(f"the document has no <!-- {name}:start --> ... <!-- {name}:end --> markers")
    return new


def table_runs():
    """`SCRIPT --table RUN.json... [--write DOC]`: (the runs read, DOC or None); None when the
    command line is not that form (the script then measures)."""
    if len(sys.argv) < 2 or sys.argv[1] != "--table":
        return None
    t = argparse.ArgumentParser()
    t.add_argument("--table", nargs="+", required=True)
    t.add_argument("--write")
    a = t.parse_args()
    runs = []
    for path in a.table:
        with open(path) as f:
            runs.append(json.load(f))
    return runs, a.write
