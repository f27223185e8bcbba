"""The traffic matrix's classification, timing and tables, on hand-made results shaped like a
real run's (the real run is recorded in docs/proof.md)."""
import pytest

import report
import streams
import timeline


@pytest.mark.parametrize("code,error,kind", [
    (0, 'Post "http://198.19.0.10:80/": dial tcp 198.19.0.10:80: connect: connection refused', "refused"),
    (0, 'Post "http://x/": read tcp 1.2.3.4:5->6.7.8.9:80: read: connection reset by peer', "reset"),
    (0, 'Post "http://x/": EOF', "eof"),
    (0, 'Get "http://x/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)', "timeout"),
    (0, 'Post "http://x/": http2: server sent GOAWAY and closed the connection; LastStreamID=5', "stream"),
    (502, "502 Bad Gateway", "status-502"),
    (200, "", "other"),
])
def test_vegeta_errors_are_classified_as_the_client_saw_them(code, error, kind):
    assert streams.vegeta_class(code, error) == kind


def test_go_timestamps_keep_their_nanoseconds_and_zone():
    assert streams.parse_time("2026-12-02T04:30:00.123456789Z") == pytest.approx(1796185800.123456789)
    assert streams.parse_time("2026-12-02T05:30:00.5+01:00") == pytest.approx(1796185800.5)
    assert timeline.rfc3339("2026-12-02T04:30:00.25Z") == pytest.approx(1796185800.25)


PODS = [
    {"name": "a", "deleted": 100.0, "sigterm": 105.0, "not_ready": 100.2},
    {"name": "b", "deleted": 103.0, "sigterm": 108.0},
    {"name": "new", "ready": 101.5, "listening": 101.9},
    {"name": "old", "ready": 90.0, "existing": True},
]


def test_a_failure_belongs_to_the_pod_with_the_nearest_termination_event():
    rel = timeline.attribute(105.01, PODS)  # a's SIGTERM, 10 ms before
    assert rel == {"pod": "a", "after_deletion_ms": 5010, "after_sigterm_ms": 10, "after_endpoint_ms": 4810}
    rel = timeline.attribute(102.9, PODS)  # b's deletion, 100 ms after
    assert rel["pod"] == "b" and rel["after_sigterm_ms"] == -5100
    assert timeline.attribute(50.0, PODS) is None


def test_a_failure_just_after_a_new_pod_joined_names_it_and_when_it_listened():
    rel = timeline.attribute(101.6, PODS)
    assert rel["new_pod"] == "new" and rel["after_new_endpoint_ms"] == 100
    assert rel["new_listened_after_endpoint_ms"] == 400
    # A pod that was there before the action is not "new", however recently its watch saw it.
    assert timeline.attribute(91.0, PODS) is None


def phase(streams_):
    return {"seconds": 6.1, "streams": streams_}


def stream(failures, sent=100):
    return {"sent": sent, "failed": len(failures), "failures": failures}


RESULTS = [{"app": "drain", "zerodrop": "none", "runs": [
    {"restart": phase({"vip/strict-keepalive/POST": stream([
        {"kind": "eof", "after_sigterm_ms": 3, "after_endpoint_ms": -20},
        {"kind": "eof", "after_sigterm_ms": 9}]),
        "ingress/keepalive/POST": stream([{"kind": "status-502", "after_sigterm_ms": 1}])}),
     "scale_down": phase({"vip/strict-keepalive/POST": stream([]), "ingress/keepalive/POST": stream([])})},
    {"restart": phase({"vip/strict-keepalive/POST": stream([]), "ingress/keepalive/POST": stream([])}),
     "scale_down": phase({"vip/strict-keepalive/POST": stream([{"kind": "refused", "after_sigterm_ms": 40}]),
                          "ingress/keepalive/POST": stream([])})},
]}]


def test_tables_sum_repetitions_per_client_and_time_each_class():
    text = report.tables(RESULTS)
    assert "| drain | none | vip | strict-keepalive | POST | 2 + 0 / 200 | 0 + 1 / 200 | eof 2, refused 1 |" in text
    assert "| drain | none | ingress | keepalive | POST | 1 + 0 / 200 | 0 + 0 / 200 | status-502 1 |" in text
    assert "| eof | drain | none | vip | 2 | 3 .. 9 (median 6) | -20 .. -20 (median -20) |" in text
    assert "| refused | drain | none | vip | 1 | 40 .. 40 (median 40) | - |" in text


def test_lost_names_every_stream_and_action_that_failed():
    assert report.lost(RESULTS) == {"drain/none/vip/strict-keepalive/POST/restart": 2,
                                    "drain/none/ingress/keepalive/POST/restart": 1,
                                    "drain/none/vip/strict-keepalive/POST/scale_down": 1}


def test_write_replaces_only_between_its_own_markers():
    doc = "a\n<!-- traffic:start -->\nold\n<!-- traffic:end -->\n<!-- proof:start -->\nkeep\n<!-- proof:end -->\n"
    assert report.between_markers(doc, "traffic", "new") == doc.replace("old", "new")
    with pytest.raises(SystemExit):
        report.between_markers("nothing", "traffic", "new")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_your_app_gets_its_one_method_from_every_client_the_strict_one_included(method):
    import traffic
    yours = traffic.clients({"methods": (method,)})
    assert [(c[0], c[1], c[3]) for c in yours] == [
        ("new", "vegeta", method), ("keepalive", "vegeta", method), ("strict-keepalive", "zerodrop-load", method)]
    h2c = traffic.clients({"methods": (method,), "h2c": True})
    assert h2c[-1][0] == "h2c" and h2c[-1][3] == method and h2c[-1][4]


def test_ours_get_the_pruned_matrix():
    import traffic
    ours = [(c[0], c[3], c[4]) for c in traffic.clients(traffic.APPS["podinfo"])]
    assert ours == [("new", "GET", False), ("keepalive", "GET", False), ("keepalive", "POST", False),
                    ("strict-keepalive", "POST", False), ("h2c", "POST", True)]
    assert not any(c[4] for c in traffic.clients(traffic.APPS["drain"])), "h2c only where the app speaks it"


def test_the_tables_say_which_clients_ran_for_each_app():
    import traffic
    results = [dict(RESULTS[0], app="shop", clients=traffic.described({"methods": ("GET",)}))]
    text = report.tables(results)
    assert text.startswith("Clients of shop on each path: new GET (vegeta), keepalive GET (vegeta), "
                           "strict-keepalive GET (zerodrop-load).")


def test_your_apps_are_told_apart_by_name():
    import argparse
    import traffic
    assert traffic.app_name("shop-api") == "shop-api"
    for bad in ["Shop", "-x", "a" * 31, "", "a_b"]:
        with pytest.raises(argparse.ArgumentTypeError):
            traffic.app_name(bad)


@pytest.mark.parametrize("argv,podinfo", [
    ([], True),
    (["--apps", "drain,exit"], False),
    (["--smoke"], False),
    (["--manifest", "app.yaml", "--name", "shop"], False),
])
def test_a_run_builds_podinfo_only_when_it_runs_podinfo(argv, podinfo):
    import traffic
    assert traffic.needs_podinfo(traffic.parser().parse_args(argv)) is podinfo
