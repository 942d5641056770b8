"""Wall time of `make test`'s JAX leg: the tests marked ``jax`` run on KERAS_BACKEND=jax.

Runs exactly the command the Makefile runs (``pytest -q -m jax -n 2 --dist loadfile`` with
KERAS_BACKEND=jax: two pytest processes), times it and writes section ``jax-leg`` of
bench/RESULTS.md: the wall time, the pytest summary line and the slowest tests.

    python bench/jax_leg.py
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import environment, write_section

ROOT = Path(__file__).resolve().parent.parent
SECTION = "jax-leg"
COMMAND = [
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-m",
    "jax",
    "-n",
    "2",
    "--dist",
    "loadfile",
    "-p",
    "no:cacheprovider",
    "--durations=8",
]


def main() -> None:
    """Runs the JAX leg once and writes its timing."""
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYOPENGL_PLATFORM": "egl",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(COMMAND, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of pytest and every process it started: what the leg costs whatever else
    # the machine runs at the same time (its wall time on a busy machine is longer).
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    load_after = os.getloadavg()[0]
    out = done.stdout
    summary = next(
        (
            line.strip("= ")
            for line in reversed(out.splitlines())
            if re.search(r"\d+ (passed|failed)", line)
        ),
        "no summary",
    )
    slowest = re.search(r"=+ slowest \d+ durations =+\n(.*?)\n\n", out, re.S)
    failures = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
    lines = [
        "## `make test`'s JAX leg",
        "",
        environment().replace(
            "- Keras backend: tensorflow", "- Keras backend: jax (the leg's pytest process)"
        ),
        f"- Load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} (cores "
        "shared with other jobs)",
        "",
        "Reproduce: `python bench/jax_leg.py` (runs `KERAS_BACKEND=jax pytest -q -m jax -n 2 "
        "--dist loadfile`, the second command of `make test`).",
        "",
        f"**Wall time: {seconds:.0f} s ({seconds / 60:.1f} min)** on the shared machine; CPU time "
        "of "
        f"the leg's processes {cpu:.0f} s, so on 2 otherwise idle cores its wall time lies between "
        f"{cpu / 2 / 60:.1f} min (both cores busy throughout) and {cpu / 60:.1f} min (one process "
        f"at a time); exit status {done.returncode}; pytest: {summary}.",
    ]
    if failures:
        lines += ["", "Failing on JAX:", "", *(f"- `{line}`" for line in failures)]
    if slowest:
        lines += ["", "Slowest:", "", "```", slowest.group(1).strip(), "```"]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
