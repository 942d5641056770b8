"""Collect a table of real AAE learning curves at a scaled profile (run once, resumable).

Configurations are drawn uniformly at random (seeded, without duplicates) from the paper's
Table 1 space and each is trained with the project's own ``aae.net.training.train_network`` on
the same data: the synthetic ``bracket`` object, 512 pre-rendered 32² pairs (180x135 renders
with the original camera scaled by 1/4, as the quick profile), 256 built-in background crops,
a network of width 1/16 (``NetworkSettings(image_size=32, width=0.0625, latent_dim=128)``),
400 optimizer steps. The first ``--repeats`` configurations are trained a second time with
another training seed, which measures the seed noise of a curve.

The table (``bench/data/aae_curves.npz``) holds one row per run:

- ``hp_index`` (runs x 9, int16): index of each value in ``aae.net.configs.SEARCH_SPACE[name]``,
  columns in the order of ``hp_names``; ``space`` is the space itself as JSON;
- ``config_id`` (runs): position of the configuration in the sampled sequence;
- ``train_seed`` (runs): seed of ``train_network`` (0 = first run, 1 = repeat);
- ``curves`` (runs x 400, float32): the loss of every step as trained. A run stops at its
  first non-finite loss (divergence); that value is kept as it happened and the steps never
  trained are NaN; ``steps`` (runs) says how many steps were trained;
- ``seconds`` (runs): wall-clock training time;
- ``meta``: JSON of every setting above, checked when a run is resumed.

A readable copy (``.csv``) lists per run the configuration, steps, seconds, the final mean
(last 40 steps) and the 40 means of 10-step windows.

    python bench/collect_aae_curves.py                # 240 configurations + 12 repeats
    python bench/collect_aae_curves.py --n 3 --repeats 1 --out /tmp/curves.npz
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# Keras picks its backend at import; the table is collected with TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from aae.data.backgrounds import BackgroundPool
from aae.data.settings import TrainingSetConfig
from aae.data.synthetic import make_object
from aae.data.training_set import TrainingData, build_training_set
from aae.net.configs import SEARCH_SPACE
from aae.net.settings import NetworkSettings
from aae.net.training import train_network
from aae.profiles import get_profile
from kt_predictive.storage import atomic_write

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_OUT = DATA_DIR / "aae_curves.npz"
OBJECT = "bracket"
FULL_STEPS = 400
N_IMAGES = 512
N_BACKGROUNDS = 256
NETWORK = NetworkSettings(image_size=32, width=0.0625, latent_dim=128)
#: Windows of the readable CSV copy and the final window of the summary column.
CSV_WINDOW, FINAL_WINDOW = 10, 40
FIRST_SEED, REPEAT_SEED = 0, 1
HP_NAMES = tuple(SEARCH_SPACE)


def window_value(curve: np.ndarray, w: int) -> float:
    """The mean of the curve's ``w``-th CSV window (0-based)."""
    return float(np.mean(curve[w * CSV_WINDOW : (w + 1) * CSV_WINDOW], dtype=np.float64))


def training_set_config() -> TrainingSetConfig:
    """The quick profile's training set (32² crops of 180x135 renders, camera scaled by 1/4),
    512 pairs."""
    return dataclasses.replace(get_profile("quick").training_set, n_images=N_IMAGES)


def table_meta(sample_seed: int) -> dict:
    """Every setting that determines the table's curves (a resumed run must match it)."""
    meta = {
        "object": OBJECT,
        "training_set": dataclasses.asdict(training_set_config()),
        "n_backgrounds": N_BACKGROUNDS,
        "background_seed": 0,
        "network": dataclasses.asdict(NETWORK),
        "full_steps": FULL_STEPS,
        "sample_seed": sample_seed,
        "keras_backend": keras.backend.backend(),
    }
    # As stored: JSON turns the camera's tuples into lists, and a resumed run compares the two.
    return json.loads(json.dumps(meta))


def sample_configs(n: int, seed: int) -> list[tuple[int, ...]]:
    """``n`` distinct configurations as value indices, drawn uniformly from the space.

    Drawn one after the other from one generator, so the first k of a larger ``n`` are the
    same k configurations: a table can be extended with a larger ``--n``.
    """
    sizes = [len(values) for values in SEARCH_SPACE.values()]
    total = int(np.prod(sizes))
    if not 0 < n <= total:
        raise ValueError(
            f"--n must be between 1 and the {total} configurations of the space, got {n}"
        )
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, ...]] = set()
    configs = []
    while len(configs) < n:
        config = tuple(int(rng.integers(size)) for size in sizes)
        # A duplicate would be one configuration measured twice under the same seed.
        if config not in seen:
            seen.add(config)
            configs.append(config)
    return configs


def config_values(indices: Sequence[int]) -> dict:
    """The configuration dict of value indices (in ``HP_NAMES`` order)."""
    return {name: SEARCH_SPACE[name][int(i)] for name, i in zip(HP_NAMES, indices, strict=True)}


@dataclasses.dataclass
class Table:
    """The runs collected so far (see the module docstring for the columns)."""

    meta: dict
    hp_index: list[tuple[int, ...]] = dataclasses.field(default_factory=list)
    config_id: list[int] = dataclasses.field(default_factory=list)
    train_seed: list[int] = dataclasses.field(default_factory=list)
    curves: list[np.ndarray] = dataclasses.field(default_factory=list)
    steps: list[int] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)

    def done(self) -> set[tuple[int, int]]:
        """The (config_id, train_seed) pairs already trained."""
        return set(zip(self.config_id, self.train_seed, strict=True))

    def add(
        self,
        config_id: int,
        indices: tuple[int, ...],
        seed: int,
        losses: np.ndarray,
        seconds: float,
    ) -> None:
        """Appends a run; ``losses`` stops at a divergence, the untrained steps become NaN."""
        curve = np.full(FULL_STEPS, np.nan, dtype=np.float32)
        curve[: len(losses)] = losses
        self.hp_index.append(indices)
        self.config_id.append(config_id)
        self.train_seed.append(seed)
        self.curves.append(curve)
        self.steps.append(len(losses))
        self.seconds.append(seconds)

    @classmethod
    def load(cls, path: Path, meta: dict) -> Table:
        """The table at ``path``, or an empty one; raises if it was collected differently."""
        table = cls(meta)
        if not path.is_file():
            return table
        with np.load(path) as stored:
            found = json.loads(str(stored["meta"]))
            if found != meta:
                raise ValueError(
                    f"{path} was collected with other settings ({found}) than this run ({meta}); "
                    "pass another --out or the same --seed, or delete the file to start over"
                )
            table.hp_index = [tuple(int(i) for i in row) for row in stored["hp_index"]]
            table.config_id = [int(i) for i in stored["config_id"]]
            table.train_seed = [int(i) for i in stored["train_seed"]]
            table.curves = list(stored["curves"])
            table.steps = [int(i) for i in stored["steps"]]
            table.seconds = [float(s) for s in stored["seconds"]]
        return table

    def save(self, path: Path) -> None:
        """Writes the .npz and its readable .csv copy, each atomically."""
        arrays = {
            "hp_names": np.array(HP_NAMES),
            "space": np.array(
                json.dumps({name: list(values) for name, values in SEARCH_SPACE.items()})
            ),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
            "hp_index": np.array(self.hp_index, dtype=np.int16).reshape(-1, len(HP_NAMES)),
            "config_id": np.array(self.config_id, dtype=np.int32),
            "train_seed": np.array(self.train_seed, dtype=np.int32),
            "curves": np.array(self.curves, dtype=np.float32).reshape(-1, FULL_STEPS),
            "steps": np.array(self.steps, dtype=np.int32),
            "seconds": np.array(self.seconds, dtype=np.float64),
        }
        atomic_write(path, lambda file: np.savez_compressed(file, **arrays))
        text = self._csv()
        atomic_write(path.with_suffix(".csv"), lambda file: file.write(text.encode()))

    def _csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        n_windows = FULL_STEPS // CSV_WINDOW
        writer.writerow(
            [
                "config_id",
                "train_seed",
                *HP_NAMES,
                "steps",
                "diverged",
                "seconds",
                f"final_mean_last{FINAL_WINDOW}",
            ]
            + [f"mean_steps_{w * CSV_WINDOW + 1}_{(w + 1) * CSV_WINDOW}" for w in range(n_windows)]
        )
        for i, curve in enumerate(self.curves):
            diverged = self.steps[i] < FULL_STEPS or not np.isfinite(curve[-1])
            # Windows after a divergence have no value: left empty, like the final mean.
            means = [
                f"{window_value(curve, w):.6g}" if (w + 1) * CSV_WINDOW <= self.steps[i] else ""
                for w in range(n_windows)
            ]
            final = (
                "" if diverged else f"{float(np.mean(curve[-FINAL_WINDOW:], dtype=np.float64)):.6g}"
            )
            values = config_values(self.hp_index[i]).values()
            writer.writerow(
                [
                    self.config_id[i],
                    self.train_seed[i],
                    *values,
                    self.steps[i],
                    int(diverged),
                    f"{self.seconds[i]:.2f}",
                    final,
                    *means,
                ]
            )
        return out.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    """Trains every missing run of the table and saves the table after each one."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=240, help="configurations (default 240)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=12,
        help="configurations trained again with another seed (default 12)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the configuration sample (default 0)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"the table (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "aae_curves_work",
        help="cached training set and the network being trained (deleted after each run)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="augmentation worker processes (0: a thread of this process)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.repeats <= args.n:
        parser.error(f"--repeats must be between 0 and --n ({args.n}), got {args.repeats}")
    if args.out.suffix != ".npz":
        parser.error(f"--out must be a .npz file, got {args.out}")

    meta = table_meta(args.seed)
    table = Table.load(args.out, meta)
    configs = sample_configs(args.n, args.seed)
    # A configuration's repeat right after its first run: the seed-noise runs are done
    # early, so a partial table already measures the noise.
    jobs = [(i, FIRST_SEED) for i in range(args.n)]
    for i in range(args.repeats):
        jobs.insert(jobs.index((i, FIRST_SEED)) + 1, (i, REPEAT_SEED))
    done = table.done()
    todo = [job for job in jobs if job not in done]
    _log(f"{len(jobs) - len(todo)} of {len(jobs)} runs already in {args.out}; {len(todo)} to train")
    if not todo:
        return

    args.work_dir.mkdir(parents=True, exist_ok=True)
    training_set = build_training_set(
        make_object(OBJECT), training_set_config(), args.work_dir, progress=False
    )
    data = TrainingData(
        training_set, BackgroundPool.builtin(NETWORK.image_size, N_BACKGROUNDS, seed=0)
    )
    started = time.perf_counter()
    for count, (config_id, seed) in enumerate(todo, 1):
        indices = configs[config_id]
        folder = args.work_dir / "network"
        # A run killed mid-training leaves a partial folder; its curve is not in the table.
        shutil.rmtree(folder, ignore_errors=True)
        network = train_network(
            config_values(indices),
            NETWORK,
            data,
            FULL_STEPS,
            folder,
            seed=seed,
            workers=args.workers,
        )
        table.add(config_id, indices, seed, network.losses, network.seconds)
        table.save(args.out)
        shutil.rmtree(folder)
        # Every run builds a new model; without this the graphs of earlier runs pile up.
        keras.backend.clear_session()
        elapsed = time.perf_counter() - started
        status = (
            f"diverged at step {len(network.losses)}"
            if network.diverged
            else f"final {network.final_mean(FINAL_WINDOW):.5f}"
        )
        _log(
            f"[{count}/{len(todo)}] config {config_id} seed {seed} {config_values(indices)}: "
            f"{status}, "
            f"{network.seconds:.1f} s; elapsed {elapsed / 60:.1f} min, "
            f"about {elapsed / count * (len(todo) - count) / 60:.0f} min left"
        )


def _log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
