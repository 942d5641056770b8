"""Searches across processes: killed with SIGKILL and rerun, and distributed over gRPC."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_problem import SEARCH

SCRIPT = Path(__file__).with_name("tiny_problem.py")


def _state(directory: Path) -> dict | None:
    path = directory / "tiny" / "oracle.json"
    return json.loads(path.read_text())["predictive"] if path.exists() else None


def _start(directory: Path, log: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(directory), "--log", str(log), *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_until(process: subprocess.Popen, directory: Path, condition, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"search ended before the kill point: {process.stderr.read().decode()[-3000:]}")
        state = _state(directory)
        if state is not None and condition(state):
            return state
        time.sleep(0.05)
    raise AssertionError("the kill point was never reached")


def _mid_initial(state):
    records = list(state["records"].values())
    done = sum(r["status"] == "complete" for r in records)
    return done >= 2 and any(r["status"] == "running" and r["steps"] >= SEARCH["window"] for r in records)


def _mid_explore(state):
    return state["phase"] == "explore" and any(
        r["status"] == "running" and r["iteration"] is not None and r["steps"] >= SEARCH["window"]
        for r in state["records"].values()
    )


def _mid_finalize(state):
    return state["phase"] == "finalize" and any(r["status"] == "running" for r in state["records"].values())


def _logged(log: Path) -> list[tuple[int, str]]:
    return [(int(pid), trial_id) for pid, trial_id in (line.split() for line in log.read_text().split("\n") if line)]


@pytest.mark.parametrize("kill_point", [_mid_initial, _mid_explore, _mid_finalize], ids=["initial", "explore", "finalize"])
def test_sigkill_and_rerun_loses_nothing(tmp_path, kill_point):
    log = tmp_path / "trials.log"
    first = _start(tmp_path, log, "--step-delay", "0.08")
    _wait_until(first, tmp_path, kill_point)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = _state(tmp_path)
    complete = {t: r for t, r in at_kill["records"].items() if r["status"] == "complete"}
    interrupted = [t for t, r in at_kill["records"].items() if r["status"] == "running"]
    assert interrupted

    second = _start(tmp_path, log)
    assert second.wait(timeout=300) == 0, second.stderr.read().decode()[-3000:]
    final = _state(tmp_path)
    assert final["phase"] == "done"
    for trial_id, before in complete.items():
        after = final["records"][trial_id]
        assert after["values"] == before["values"] and after["early"] == before["early"]
        if before["iteration"] is None:
            assert after == before  # phase-1 results are final
        else:
            assert after["predicted"] == before["predicted"]
    # The rerun ran the interrupted trials and new ones. A trial completed before the kill
    # runs again only as its phase-4 continuation, once; any trial runs at most twice
    # (exploration, then continuation).
    rerun = [trial_id for pid, trial_id in _logged(log) if pid == second.pid]
    assert set(interrupted) <= set(rerun)
    for trial_id in set(rerun):
        record = final["records"][trial_id]
        continued = record["phase"] == "finalize" and record["iteration"] is not None
        if trial_id in complete:
            assert continued and complete[trial_id]["phase"] == "explore" and rerun.count(trial_id) == 1
        else:
            assert rerun.count(trial_id) <= (2 if continued else 1)
    assert all(r["status"] != "running" for r in final["records"].values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_complete_all_phases(tmp_path):
    log = tmp_path / "trials.log"
    port = str(_free_port())
    env = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    chief = _start(tmp_path, log, env={**env, "KERASTUNER_TUNER_ID": "chief"})
    workers = [_start(tmp_path, log, env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"}) for i in range(2)]
    try:
        for worker in workers:
            assert worker.wait(timeout=400) == 0, worker.stderr.read().decode()[-3000:]
        assert chief.wait(timeout=120) == 0, chief.stderr.read().decode()[-3000:]
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    final = _state(tmp_path)
    assert final["phase"] == "done"
    records = list(final["records"].values())
    assert sum(r["iteration"] is None for r in records) == SEARCH["initial_trials"]
    assert sum(r["phase"] == "finalize" for r in records) >= 1
    assert all(r["status"] in ("complete", "failed") for r in records)
    workers_that_ran = {pid for pid, _ in _logged(log)}
    assert workers_that_ran == {w.pid for w in workers}
