"""Shared helpers of the benchmarks: the machine they ran on, and their sections of RESULTS.md.

Each benchmark owns one section of ``bench/RESULTS.md``, delimited by ``<!-- NAME:start -->``
and ``<!-- NAME:end -->``, and rewrites only that section, so benchmarks can be rerun one
at a time without losing the others' numbers.
"""

from __future__ import annotations

import datetime
import fcntl
import importlib.metadata
import os
import platform
import re
import secrets
from pathlib import Path

#: bench/RESULTS.md, wherever the benchmark is started from.
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmarks\n"
_PACKAGES = ("numpy", "keras", "tensorflow", "keras-tuner", "pyrender")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def write_section(name: str, markdown: str, path: str | os.PathLike = RESULTS_PATH) -> Path:
    """Replaces the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``.

    Creates the file (titled ``# Benchmarks``) if it does not exist and appends the section
    if the file lacks it. Concurrent writers of different sections do not lose each
    other's updates.

    Raises:
        ValueError: ``name`` is not letters, digits, ``_``, ``.`` or ``-``, or the file holds
            the section's start marker without a matching end marker after it.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"section name {name!r} must be letters, digits, '_', '.' or '-', e.g. 'aae-throughput'"
        )
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{markdown.strip()}\n{end}"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read-modify-write under a lock on the folder: benchmarks may finish at the same time.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        text = path.read_text() if path.is_file() else TITLE
        first, last = text.find(start), text.find(end)
        if first == -1 and last == -1:
            text = f"{text.rstrip()}\n\n{section}\n"
        elif first == -1 or last < first:
            raise ValueError(
                f"{path} has a broken section {name!r}: {start} and {end} must both appear, in "
                "that order; fix or delete the markers by hand"
            )
        else:
            text = text[:first] + section + text[last + len(end) :]
        _atomic_write_text(path, text)
    finally:
        os.close(folder)  # also releases the lock
    return path


def _atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` to a new file next to ``path`` and renames it over ``path``.

    Like ``kt_predictive.storage.atomic_write``, but without importing kt_predictive, whose
    package pulls in keras-tuner, scikit-learn and Optuna: bench/gpu_throughput.py runs on a
    GPU machine that only gets Keras carried to it.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # 0o666 and the process's umask: the mode a plain open() would give (mkstemp's is 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def environment() -> str:
    """A markdown list describing the machine and software a benchmark ran on."""
    import keras

    versions = ", ".join(f"{package} {_version(package)}" for package in _PACKAGES)
    return "\n".join(
        [
            f"- Machine: {_cpu_model()}, {_cores()}, {_memory_gib():.1f} GiB RAM",
            f"- Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
            f"- Python {platform.python_version()}; {versions}",
            f"- Keras backend: {keras.backend.backend()}",
        ]
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _cores() -> str:
    usable = len(os.sched_getaffinity(0))
    total = os.cpu_count()
    return f"{usable} cores" if usable == total else f"{usable} of {total} cores usable"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20  # the value is in KiB
    raise ValueError("/proc/meminfo has no MemTotal line; environment() needs Linux")


def _version(package: str) -> str:
    # TensorFlow is installed as tensorflow-cpu on CPU machines.
    for distribution in (package, f"{package}-cpu"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"
