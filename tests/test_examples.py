"""The comparison scripts of examples/ run end to end at the tiny profile."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aae.search import RunPaths
from kt_predictive.records import read_search, training_steps

# Whole runs of a minute or more: make test runs them; -m "not slow" leaves them out locally.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# `python -c FROZEN script args...` runs the script as `python script args...` would, after
# importing what it imports and freezing those objects out of later garbage collections
# (as conftest.py does for pytest's own process): keras-tuner and Keras collect twice per
# trial, which otherwise walks TensorFlow's half a million objects each time.
FROZEN = (
    "import gc, runpy, sys; import aae.search, kt_predictive; gc.collect(); gc.freeze(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", FROZEN, str(EXAMPLES / script), "--profile", "tiny", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_compare_rewards(tmp_path):
    out = tmp_path / "rewards"
    stdout = _run("compare_rewards.py", "--out", str(out), "--set", "search.thresholds=none")
    table = (out / "compare_rewards.md").read_text()
    assert "| exp |" in table and "| linear |" in table and "best real final loss" in table
    assert "Exponential vs linear reward" in stdout
    # Both searches trained on one training set, rendered once.
    assert len(list((out / "cache").glob("training_set_*.npz"))) == 1
    assert not list(out.glob("*/cache"))
    # Both searches ran in their own folders; the table's numbers are theirs.
    for reward in ("exp", "linear"):
        (state,) = (out / reward / "search").glob("*/oracle.json")
        snapshot = read_search(state.parent)
        assert snapshot.state["settings"]["allocation"]["reward"] == reward
        assert snapshot.state["settings"]["allocation"]["thresholds"] == "paper"
        best = min(r.real_final for r in snapshot.records.values() if r.is_real)
        row = next(line for line in table.splitlines() if line.startswith(f"| {reward} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[-2]) == pytest.approx(best, abs=5e-6)
        assert int(cells[-1]) == training_steps(snapshot.records.values())


def test_transfer(tmp_path):
    out = tmp_path / "transfer"
    stdout = _run("transfer.py", "--objects", "duck", "--out", str(out))
    table = (out / "transfer.md").read_text()
    labels = ["Sundermeyer", "BOP", "NAS-2", "MinLoss-2", "MaxADD-2"]
    assert "Table 6" in table and "Table 7" in table
    # Each recall in the table is the one its network's evaluation measured.
    recall_row = next(line for line in table.splitlines() if line.startswith("| duck |"))
    cells = [cell.strip() for cell in recall_row.strip("|").split("|")][1:]
    assert len(cells) == len(labels)
    paths = RunPaths(out / "duck")
    for label, cell in zip(labels, cells, strict=True):
        evaluation = json.loads(paths.evaluation(label).read_text())["evaluation"]
        assert float(cell) == pytest.approx(100 * evaluation["recall"], abs=0.05)
    assert "duck" in stdout


@pytest.mark.parametrize("loop", ["oracle", "tape"])
def test_custom_training_loops(tmp_path, loop):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FROZEN,
            str(EXAMPLES / "custom_loop.py"),
            "--loop",
            loop,
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (state,) = tmp_path.glob("*/oracle.json")
    snapshot = read_search(state.parent)
    assert snapshot.phase == "done"
    records = list(snapshot.records.values())
    # Explored trials stopped at the early budget; continuations resumed their parents.
    assert {r.steps for r in records if r.role == "explore"} == {20}
    continued = [r for r in records if r.role == "continuation"]
    assert continued and all(r.is_real and r.steps == 60 for r in continued)
    best = min(r.real_final for r in records if r.is_real)
    assert f"best real final loss {best:.5g}" in result.stdout
