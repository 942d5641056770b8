"""One search folder, one search process: a real second process is refused."""

import json
import os
import signal
import socket
import subprocess
import sys

from kt_predictive import lock

from processes import SCRIPT, start, wait_until


def test_a_second_process_in_the_same_folder_is_refused(tmp_path):
    log = tmp_path / "trials.log"
    first = start(tmp_path, log, "--step-delay", "0.3")  # still searching when the second starts
    try:
        wait_until(first, tmp_path, lambda state: True)  # the first search is under way
        second = subprocess.run(
            [sys.executable, str(SCRIPT), str(tmp_path), "--log", str(tmp_path / "second.log")],
            capture_output=True,
            timeout=300,
        )
        assert second.returncode != 0
        message = second.stderr.decode()
        assert f"is being searched by process {first.pid}" in message and "chief/worker" in message
        assert not (tmp_path / "second.log").exists()  # it trained nothing
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_a_stale_lock_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owner = {"pid": int(dead.stdout), "host": socket.gethostname()}
    (tmp_path / lock.LOCK_FILE).write_text(json.dumps(owner))
    path = lock.acquire(tmp_path)
    assert str(os.getpid()) in path.read_text()
    lock.release(path)
    assert not path.exists()


def test_overwrite_starts_a_new_search_in_a_new_or_an_existing_folder(tmp_path):
    # overwrite=True once crashed with FileNotFoundError (search.lock): keras-tuner deleted
    # the folder, then the tuner took its lock again inside it.
    from kt_predictive import PredictiveSearch

    from tiny_problem import SEARCH, build_model, grouped, regression_data

    x, y = regression_data()
    for round_ in range(2):  # a new folder, then the same folder holding a finished search
        tuner = PredictiveSearch(
            build_model, directory=tmp_path, project_name="fresh", overwrite=True, **grouped(SEARCH)
        )
        assert tuner.oracle.records() == []  # nothing kept from the previous round
        tuner.search(x, y, batch_size=32, verbose=0)
        assert tuner.oracle.phase == "done", round_
        assert (tmp_path / "fresh" / "oracle.json").is_file()
