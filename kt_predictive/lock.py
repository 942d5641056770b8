"""One search folder, one search process.

Two processes running the same project without keras-tuner's chief/worker mode overwrite
each other's trials and state, and both exit 0. A lock file in the project folder names the
owner (pid and host); a second process is refused with one message, and a lock left by a
process that no longer runs on this host is taken over.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
from pathlib import Path

from kt_predictive.errors import SearchLockedError

LOCK_FILE = "search.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def acquire(project_dir: str | os.PathLike) -> Path:
    """Takes the lock of ``project_dir`` for this process (again, if it already holds it).

    Raises:
        SearchLockedError: naming the owner, when a live process holds it.
    """
    # keras-tuner's overwrite=True deletes the folder between the tuner's two acquisitions.
    Path(project_dir).mkdir(parents=True, exist_ok=True)
    path = Path(project_dir) / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                owner = {}
            if owner == me:
                return path
            same_host = owner.get("host") == me["host"]
            if owner and (not same_host or _alive(int(owner.get("pid", -1)))):
                where = "this host" if same_host else f"host {owner.get('host')}"
                raise SearchLockedError(
                    f"{Path(project_dir)} is being searched by process {owner.get('pid')} on "
                    f"{where} "
                    f"({path}). Two processes in one folder overwrite each other's trials: wait "
                    "for "
                    "it, use another project_name, or run workers with keras-tuner's chief/worker "
                    "mode (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT). If "
                    f"that process is gone for good, delete {path}"
                ) from None
            # A stale lock (its process ended without releasing it, e.g. kill -9).
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as file:
            json.dump(me, file)
        atexit.register(release, path)
        return path
    raise SearchLockedError(f"could not take the lock {path}; delete it if no search is running")


def release(path: str | os.PathLike) -> None:
    """Removes the lock if this process holds it."""
    path = Path(path)
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if owner.get("pid") == os.getpid():
        path.unlink(missing_ok=True)
