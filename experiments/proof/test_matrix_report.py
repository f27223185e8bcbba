"""The cluster matrix's tables and CI's multi-node verdict, on hand-made results shaped like a
real run's (the real runs are in docs/proof.md)."""
import matrix_report


def stream(failed, sent=100, kind="refused", **rel):
    return {"failed": failed, "sent": sent, "failures": [{"kind": kind, **rel}] * failed}


def cell(app, setting, restart, scale=None, deleted=()):
    """`deleted`: (pod, its preStop sleep) the restart deleted."""
    pods = [{"name": name, "deleted": 100.0, "prestop_sleep": sleep} for name, sleep in deleted]
    return {"app": app, "zerodrop": setting,
            "runs": [{"restart": {"streams": restart, "pods": pods}, "scale_down": {"streams": scale or {}}}]}


def run(nodes, cells, mode="nftables", sweep=False):
    return {"nodes": nodes, "mode": mode, "lag": 15, "sweep": sweep, "cells": cells}


def test_vip_failures_sum_over_nodes_and_name_how_many_nodes_saw_them():
    c = cell("exit", "none", {"vip:node/new/GET": stream(2), "vip:c1/new/GET": stream(3),
                              "vip:c2/new/GET": stream(0), "vip:c1/strict/POST": stream(1),
                              "lb/new/GET": stream(7)},
             {"vip:c2/new/GET": stream(1)})
    t = matrix_report.totals(c)
    assert t[("vip", "new")][:2] == [6, 400] and t[("vip", "new")][2] == {"node", "c1", "c2"}
    table = matrix_report.matrix([run(3, [c])])
    assert "| exit | none | vip | 6 / - / 1 (3 nodes) |" in table
    assert "| exit | none | lb | 7 / - / - |" in table


def test_each_topology_is_a_column_fewest_nodes_first():
    a = run(10, [cell("drain", "enforce", {"vip:node/new/GET": stream(0)})])
    b = run(1, [cell("drain", "enforce", {"vip:node/new/GET": stream(4)})], mode="iptables")
    table = matrix_report.matrix([a, b])
    assert table.splitlines()[0] == "| app | zerodrop | path | 1 iptables nodes | 10 nftables nodes |"
    assert "| drain | enforce | vip | 4 / - / - (1 node) | 0 / - / - |" in table


def test_failures_are_placed_by_path_app_setting_and_class():
    c = cell("exit", "enforce", {"lb/new/GET": stream(2, after_sigterm_ms=300, after_endpoint_ms=5200)})
    text = matrix_report.placement([run(3, [c])])
    assert "| lb | exit | enforce | refused | 2 | 300 .. 300 (median 300) | 5200 .. 5200 (median 5200) | - |" in text


def test_the_smallest_safe_sleep_is_the_one_from_which_every_larger_one_lost_nothing():
    assert matrix_report.safe_sleep({0: 9, 1: 0, 2: 3, 3: 0, 5: 0}) == 3
    assert matrix_report.safe_sleep({0: 0, 5: 0}) == 0
    assert matrix_report.safe_sleep({0: 0, 20: 1}) is None


def test_the_sweep_table_gives_each_path_its_smallest_safe_sleep_by_new_connections_and_all():
    cells = [cell("drain", f"sleep={s}", {"vip:node/new/GET": stream(v), "vip:c1/strict/POST": stream(k),
                                          "lb/new/GET": stream(l)})
             for s, v, k, l in ((0, 5, 1, 90), (2, 0, 1, 80), (16, 0, 0, 0), (20, 0, 0, 0))]
    text = matrix_report.sweep([run(10, cells, sweep=True)])
    assert "10 nftables nodes, the drain app" in text
    assert "| vip | 5 (6) | 0 (1) | 0 (0) | 0 (0) | 2 s (16 s) |" in text
    assert "| lb | 90 (90) | 80 (80) | 0 (0) | 0 (0) | 16 s (16 s) |" in text


def smoke(none_new, enforce_new, nodes=("node", "c1", "c2"), enforce_sleeps=(5, 5)):
    deleted = [(f"app-{i}", s) for i, s in enumerate(enforce_sleeps)]
    return run(3, [cell("exit", "none", {f"vip:{n}/new/GET": stream(f) for n, f in zip(nodes, none_new)},
                        deleted=[("app-a", 0)]),
                   cell("exit", "enforce", {f"vip:{n}/new/GET": stream(f) for n, f in zip(nodes, enforce_new)},
                        deleted=deleted)])


def test_the_ci_cell_passes_only_when_it_can_tell_and_zerodrop_removes_the_failures():
    assert matrix_report.smoke_problem(smoke([3, 0, 1], [0, 0, 0])) is None
    assert "cannot tell" in matrix_report.smoke_problem(smoke([0, 0, 0], [0, 0, 0]))
    assert "under enforce" in matrix_report.smoke_problem(smoke([3, 0, 1], [0, 2, 0]))
    # A node whose clients never reached the apiserver's Service is not a pass.
    assert "expected 3 nodes" in matrix_report.smoke_problem(smoke([3, 1], [0, 0], nodes=("node", "c1")))


def test_the_ci_cell_fails_when_a_pod_under_enforce_was_deleted_without_the_sleep():
    # The first pods of a namespace applied with its Deployment escaping admission: caught even
    # when the race lost no request.
    problem = matrix_report.smoke_problem(smoke([3, 0, 1], [0, 0, 0], enforce_sleeps=(5, 0)))
    assert problem == "pods deleted under enforce without zerodrop's preStop sleep: ['app-1']"


def adaptive_cell(new_failed, drains):
    """`drains`: per deleted pod, its waiter's line (None: no line) or "no-call"."""
    c = cell("exit", "adaptive-conn", {"vip:node/new/GET": stream(new_failed)})
    c["runs"][0]["restart"]["pods"] = [
        {"name": f"app-{i}", "deleted": 100.0, "prestop_sleep": 0,
         **({} if d == "no-call" else {"prestop_drain": True}),
         **({"drain": d} if isinstance(d, dict) else {})}
        for i, d in enumerate(drains)]
    return c


def test_the_ci_cell_fails_when_an_adaptive_pod_was_not_measured_or_lost_requests():
    quiet = {"waited_ms": 2100, "ending": "quiet"}
    ok = smoke([3, 0, 1], [0, 0, 0])
    ok["cells"].append(adaptive_cell(0, [quiet, dict(quiet, waited_ms=3100)]))
    assert matrix_report.smoke_problem(ok) is None
    assert matrix_report.waits(ok["cells"][-1]) == (2.1, 3.1)
    for drains, why in (([quiet, None], "app-1 (no drain line)"),
                        ([quiet, {"waited_ms": 5000, "ending": "fallback"}], "app-1 (fallback)"),
                        (["no-call", quiet], "app-0 (no drain call)")):
        bad = smoke([3, 0, 1], [0, 0, 0])
        bad["cells"].append(adaptive_cell(0, drains))
        assert why in matrix_report.smoke_problem(bad)
    lost = smoke([3, 0, 1], [0, 0, 0])
    lost["cells"].append(adaptive_cell(2, [quiet]))
    assert matrix_report.smoke_problem(lost) == "adaptive-conn: 2 new connections failed"


def test_the_waiters_line_is_read_from_its_json_log():
    import timeline
    line = ('{"timestamp":"2026-12-05T03:00:00Z","level":"INFO","fields":{"message":"drain",'
            '"waited_ms":2100,"ending":"quiet","new_connections":0}}')
    assert timeline.drain_line(line)["waited_ms"] == 2100
    assert timeline.drain_line('{"fields":{"message":"drain waiter serving"}}') is None
    assert timeline.drain_line("not json") is None


def test_rollouts_show_each_actions_time_and_the_waits():
    c = adaptive_cell(0, [{"waited_ms": 2100, "ending": "quiet"}, {"waited_ms": 30000, "ending": "max"}])
    c["runs"][0]["restart"]["seconds"], c["runs"][0]["scale_down"]["seconds"] = 7.42, 3.0
    table = matrix_report.rollouts([run(3, [c])])
    assert ("| 3 nftables | exit | adaptive-conn | 0 / 100 | - | - | 7.4 s | 3.0 s | 2.1-30.0 s "
            "| max 1, quiet 1 |") in table
    # Failed / sent per path sums every client over restart and scale-down.
    s = cell("drain", "enforce", {"lb/new/GET": stream(3), "vip:c1/new/GET": stream(1)},
             {"lb/keepalive/GET": stream(2, sent=1500)})
    s["runs"][0]["restart"]["seconds"], s["runs"][0]["scale_down"]["seconds"] = 7.0, 5.5
    table = matrix_report.rollouts([run(3, [s], mode="iptables")])
    assert "| 3 iptables | drain | enforce | 1 / 100 | - | 5 / 1,600 | 7.0 s | 5.5 s | - | - |" in table


def test_the_path_smoke_needs_the_sleep_to_lose_and_the_marked_service_to_lose_nothing():
    def result(sleep_lost, marked_lost, marked_sleep=15):
        return run(3, [cell("drain", "enforce", {"lb/new/GET": stream(sleep_lost)}, deleted=[("a", 5)]),
                       cell("drain", "path=load-balancer", {"lb/new/GET": stream(marked_lost)},
                            deleted=[("b", marked_sleep)])])
    assert matrix_report.path_smoke_problem(result(40, 0), 15) is None
    assert "cannot tell" in matrix_report.path_smoke_problem(result(0, 0), 15)
    assert "lost 3 requests" in matrix_report.path_smoke_problem(result(40, 3), 15)
    assert "less than the class's 15 s" in matrix_report.path_smoke_problem(result(40, 0, 5), 15)
