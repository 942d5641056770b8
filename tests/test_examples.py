"""The comparison scripts of examples/ run end to end at the tiny profile."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--profile", "tiny", *args],
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
    # Both searches ran in their own folders with the same seed and budget.
    assert (out / "exp" / "search").is_dir() and (out / "linear" / "search").is_dir()


def test_transfer(tmp_path):
    out = tmp_path / "transfer"
    stdout = _run("transfer.py", "--objects", "duck", "--out", str(out))
    table = (out / "transfer.md").read_text()
    for label in ("Sundermeyer", "BOP", "NAS-2", "MinLoss-2", "MaxADD-2"):
        assert label in table
    assert "Table 6" in table and "Table 7" in table and "| duck |" in table
    assert "duck" in stdout
