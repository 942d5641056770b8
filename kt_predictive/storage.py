"""Atomic file writes and clear errors for unreadable state.

A search may be killed at any moment (kill -9, a preempted machine). Every file it writes is
first written to a temporary file in the same folder and then renamed over the target, so a
reader sees either the old or the new file, never half of one. A change that spans several
files is one :mod:`~kt_predictive.transitions` state transition.

:data:`FAULT_HOOK` is called at every write point (each rename of a written file, each
deletion of a checkpoint): tests set it to kill the process there.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kt_predictive.errors import CorruptStateError, StorageError

#: Called with the file's name at every write point of a search (just before a written file
#: replaces the old one, just before a file is deleted); ``None`` (default) does nothing.
#: Tests set it to kill the process at the k-th write.
FAULT_HOOK: Callable[[str], None] | None = None


def write_point(name: str) -> None:
    """Calls :data:`FAULT_HOOK` with ``name``, if one is set."""
    if FAULT_HOOK is not None:
        FAULT_HOOK(name)


def _create_temporary(folder: Path, name: str) -> tuple[int, str]:
    """A new file next to ``name`` in ``folder``, with the mode a plain open() gives.

    mkstemp makes files readable by their owner only; os.open with 0o666 lets the kernel
    apply the process's umask, so other users and tools of a shared search directory can
    read the files (and the umask is never changed, not even for a moment).
    """
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Calls ``write(file)`` on a temporary file, then renames it to ``path``.

    Raises:
        OSError: with the path and the reason (disk full, no permission) when the folder
            cannot be written; the previous file at ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path.parent, path.name)
    except OSError as error:
        raise StorageError(
            error.errno,
            f"cannot write {path}: {error.strerror}; free disk space or choose a "
            "writable directory",
        ) from error
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        write_point(path.name)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise StorageError(
                error.errno,
                f"cannot write {path}: {error.strerror}; free disk space or "
                "choose a writable directory",
            ) from error
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Writes ``obj`` as JSON to ``path`` atomically."""
    # Compact, as keras-tuner writes its own: an oracle's state is rewritten after every
    # report of a trial, and indentation makes the dump of 10³ records 2.5x slower.
    data = json.dumps(obj, separators=(",", ":")).encode()
    atomic_write(path, lambda file: file.write(data))


def remove_file(path: str | os.PathLike) -> None:
    """Deletes ``path`` if it exists (a write point: see :data:`FAULT_HOOK`)."""
    path = Path(path)
    if path.exists():
        write_point(f"delete {path.name}")
        path.unlink(missing_ok=True)


def sync_folder(folder: str | os.PathLike) -> None:
    """Makes the renames and deletions in ``folder`` durable (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; its renames are durable with the file
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself was atomic
    finally:
        os.close(fd)


def check_writable(folder: str | os.PathLike) -> None:
    """Creates ``folder`` if needed and writes a small file in it, or raises one clear error.

    Raises:
        StorageError: an ``OSError`` naming the folder, the reason and the fix.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            error.errno, f"cannot create {folder}: {error.strerror}; choose a writable directory"
        ) from error
    probe = folder / ".write_check"
    atomic_write(probe, lambda file: file.write(b"ok"))
    probe.unlink()


def read_json(path: str | os.PathLike, recovery: str) -> Any:
    """Reads JSON from ``path``; a truncated or corrupt file raises one clear error.

    Args:
        path: The file.
        recovery: What the user can do about it, appended to the error message.

    Raises:
        CorruptStateError: naming the file, what is wrong and ``recovery``.
    """
    try:
        with open(path, "rb") as file:
            return json.loads(file.read().decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptStateError(f"{path} is corrupt ({error}). {recovery}") from error
