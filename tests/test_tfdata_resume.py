"""A seeded search over a tf.data pipeline, killed with SIGKILL mid-trial and rerun, ends as
the uninterrupted search does: the interrupted trial resumes on the batches it would have
trained on (PredictiveTuner trains on the pipeline as one stream of batches and skips the
steps a checkpoint holds)."""

import os
import signal

import numpy as np
import pytest

from processes import start, state, wait_until

INTERRUPTED = "0000"


def _finals(final: dict) -> dict:
    return {t: r["real_final"] for t, r in final["records"].items() if r["real_final"] is not None}


@pytest.mark.slow  # three searches in subprocesses
def test_a_killed_tf_data_search_resumes_to_the_uninterrupted_search(tmp_path):
    uninterrupted = start(tmp_path / "uninterrupted", tmp_path / "a.log", "--tf-data")
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read().decode()[-3000:]
    expected = state(tmp_path / "uninterrupted")

    folder = tmp_path / "killed"
    slow = ("--tf-data", "--step-delay", "0.3", "--delay-after-step", "12")
    first = start(folder, tmp_path / "b.log", *slow)
    # Killed after the checkpoint at step 12: the middle of the pipeline's second epoch.
    wait_until(first, folder, lambda s: s["records"].get(INTERRUPTED, {}).get("steps", 0) >= 12)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert state(folder)["records"][INTERRUPTED]["status"] == "running"
    second = start(folder, tmp_path / "b.log", "--tf-data")
    assert second.wait(timeout=600) == 0, second.stderr.read().decode()[-3000:]
    final = state(folder)

    assert final["phase"] == expected["phase"] == "done"
    finals, expected_finals = _finals(final), _finals(expected)
    assert finals.keys() == expected_finals.keys()
    for trial_id, value in expected_finals.items():
        assert np.isclose(finals[trial_id], value, rtol=1e-6, atol=0), trial_id
    best = min(expected_finals, key=expected_finals.get)
    assert min(finals, key=finals.get) == best
