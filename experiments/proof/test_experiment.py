"""The experiment's reporting, over a sample of a real run (run-sample.json: three cells and
two sweep points of the run recorded in docs/proof.md, failure lists shortened)."""
import json
import os

import pytest

import experiment
import report

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def run():
    with open(os.path.join(HERE, "run-sample.json")) as f:
        return json.load(f)


def test_table_sums_every_repetition_and_says_what_zerodrop_set(run):
    rows = experiment.table(run["results"], []).splitlines()
    assert rows[0].startswith("| app | zerodrop |")
    exit_none = next(r for r in rows if r.startswith("| exit | none |"))
    assert "| 97 + 134 + 127 / 3383 | 84 + 7 + 75 / 2968 | 8.25% |" in exit_none
    assert exit_none.endswith("| nothing |")
    slow = next(r for r in rows if "enforce+readiness-path" in r)
    assert 'preStop {"sleep":{"seconds":5}}, readiness httpGet /ready' in slow
    shell = next(r for r in rows if "shell-exec" in r)
    assert "`exec` in sh -c" in shell


def test_sweep_rows_add_restarts_and_scale_downs(run):
    text = experiment.table(run["results"], run["sweep"])
    assert "| 0s | 579 / 6265 |" in text
    assert "| 1s | 0 / 7592 |" in text


def test_write_replaces_only_between_the_markers(tmp_path):
    doc = "head\n<!-- proof:start -->\nold\n<!-- proof:end -->\ntail\n"
    assert report.between_markers(doc, "proof", "new") == (
        "head\n<!-- proof:start -->\nnew\n<!-- proof:end -->\ntail\n")
    empty = "<!-- proof:start -->\n<!-- proof:end -->\n"
    assert report.between_markers(empty, "proof", "new") == "<!-- proof:start -->\nnew\n<!-- proof:end -->\n"
    # A file without the markers is refused and left as it was (it used to be emptied).
    path = tmp_path / "doc.md"
    path.write_text("no markers here")
    with pytest.raises(SystemExit):
        report.write_between(str(path), "proof", "new")
    assert path.read_text() == "no markers here"
