"""LCBench problems: replayed learning curves of MLPs on a 75,000-configuration grid.

The tables (``<task id>.npz`` in ``shared/data/lcbench``, see its README) hold the YAHPO Gym
LCBench surrogate's validation cross-entropy at every epoch 1..52 of every configuration of
a grid of 7 hyperparameters. One epoch is one step: a full training is 52 steps, the early
budget 8, the window 2 and the final window 4. Row ``r`` of a table is the configuration
``numpy.unravel_index(r, sizes)`` over the hyperparameters in ``GRID_ORDER``.

A method's regret is the final loss of the configuration it picks (the mean of the last
``final_window`` steps of its replayed curve, the loss every method sees) minus the lowest
such final over the whole table (the exhaustive optimum).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import keras_tuner
import numpy as np

from kt_predictive import TrainingSteps

from .problems import CurveRun, Problem, Settings

#: The six development tasks (OpenML task ids) tabulated in shared/data/lcbench.
TASKS = (126025, 167104, 167161, 167185, 168330, 189862)
GRID_ORDER = (
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "num_layers",
    "max_units",
    "max_dropout",
)
#: The environment variable that names the tables' folder when it is not found by itself.
DATA_ENV = "KT_LCBENCH_DATA"
FOLDER = Path("shared") / "data" / "lcbench"

LCBENCH_SETTINGS = Settings(
    budget=TrainingSteps(full_steps=52, early_steps=8, window=2, final_window=4),
    tuning_trials=10,
    hyperband_chunk=4,
    bo_initial_points=21,
)


def data_folder() -> Path:
    """The folder of the LCBench tables: ``$KT_LCBENCH_DATA``, else the first
    ``shared/data/lcbench`` in the repository root or a folder above it.

    Raises:
        FileNotFoundError: no folder holds ``grid.json``; says where it was looked for.
    """
    if os.environ.get(DATA_ENV):
        candidates = [Path(os.environ[DATA_ENV])]
    else:
        root = Path(__file__).resolve().parents[2]
        candidates = [folder / FOLDER for folder in (root, *root.parents)]
    for folder in candidates:
        if (folder / "grid.json").is_file():
            return folder
    raise FileNotFoundError(
        "the LCBench tables (grid.json and <task id>.npz) are not in "
        f"{', '.join(map(str, candidates[:3]))}{' ...' if len(candidates) > 3 else ''}; "
        f"put them in shared/data/lcbench beside the repository or set {DATA_ENV} to their folder"
    )


def available() -> bool:
    """Whether the LCBench tables can be found (``data_folder`` does not raise)."""
    try:
        data_folder()
    except FileNotFoundError:
        return False
    return True


class LCBenchProblem(Problem):
    """One LCBench task, replayed: a configuration's training is its row of the table.

    Every hyperparameter is a ``Choice`` over its grid values (ordered numbers). The table is
    deterministic (no seed noise): every seed replays the same curve.

    Attributes:
        task: the OpenML task id.
        grid: each hyperparameter's values, in ``GRID_ORDER``.
        curves: (75000, 52) float64 loss after each epoch of each row.
        finals: (75000,) the mean of the last ``final_window`` epochs of each row's curve.
    """

    settings = LCBENCH_SETTINGS

    def __init__(self, task: int, folder: Path | None = None):
        folder = Path(folder) if folder is not None else data_folder()
        path = folder / f"{task}.npz"
        if not path.is_file():
            raise FileNotFoundError(
                f"no LCBench table for task {task} at {path}; the tasks are {list(TASKS)}"
            )
        meta = json.loads((folder / "grid.json").read_text())
        if tuple(meta["order"]) != GRID_ORDER:
            raise ValueError(f"{folder / 'grid.json'} orders the grid {meta['order']}")
        self.task = int(task)
        self.name = f"lcbench-{task}"
        self.title = f"LCBench task {task} (replayed surrogate curves, 75,000 configurations)"
        with np.load(path) as stored:
            self.grid = {name: _numbers(stored[f"grid_{name}"]) for name in GRID_ORDER}
            self.curves = stored["val_cross_entropy"].astype(np.float64)
        budget = self.settings.budget
        if self.curves.shape[1] != budget.full_steps:
            raise ValueError(
                f"{path} has curves of {self.curves.shape[1]} epochs; LCBench problems train "
                f"{budget.full_steps}"
            )
        self.sizes = tuple(len(v) for v in self.grid.values())
        if self.curves.shape[0] != int(np.prod(self.sizes)):
            raise ValueError(f"{path} has {self.curves.shape[0]} rows for a grid of {self.sizes}")
        self._index = {name: {v: i for i, v in enumerate(vs)} for name, vs in self.grid.items()}
        self.finals = self.curves[:, -budget.final_window :].mean(axis=1)
        self.best_row = int(np.argmin(self.finals))
        self.best_known = float(self.finals[self.best_row])
        self.best_known_note = (
            f"the lowest final (mean of epochs {budget.full_steps - budget.final_window + 1}.."
            f"{budget.full_steps}) over all {len(self.finals):,} configurations of the grid "
            "(the exhaustive optimum)"
        )
        self.source = f"LCBench surrogate table of task {task} ({path.name})"

    def describe(self) -> str:
        return f"{super().describe()}; {self.source}"

    def space(self) -> keras_tuner.HyperParameters:
        hp = keras_tuner.HyperParameters()
        for name, values in self.grid.items():
            hp.Choice(name, list(values), ordered=True)
        return hp

    def row(self, values: Mapping) -> int:
        """The table row of a configuration; KeyError names a value not in the grid."""
        try:
            digits = [self._index[name][values[name]] for name in GRID_ORDER]
        except KeyError as error:
            raise KeyError(
                f"{dict(values)} is not a configuration of {self.name}'s grid"
            ) from error
        return int(np.ravel_multi_index(digits, self.sizes))

    def values(self, row: int) -> dict:
        """The configuration of a table row."""
        digits = np.unravel_index(int(row), self.sizes)
        return {name: self.grid[name][int(d)] for name, d in zip(GRID_ORDER, digits, strict=True)}

    def true_final(self, values: Mapping) -> float:
        """The final loss a configuration reaches when trained fully."""
        return float(self.finals[self.row(values)])

    def regret(self, final: float) -> float:
        """A final loss minus the table's lowest."""
        return final - self.best_known

    def start(self, values, seed):
        del seed  # the table is deterministic
        return CurveRun(self.curves[self.row(values)])

    def resume(self, values, checkpoint, seed):
        del seed
        return CurveRun(self.curves[self.row(values)], trained=int(checkpoint))


def _numbers(values: np.ndarray) -> list[int] | list[float]:
    """A hyperparameter's grid values as Python numbers: ints where all are integral
    (batch size, layers, units), floats otherwise (one type per ``Choice``)."""
    floats = [float(v) for v in values]
    return [int(v) for v in floats] if all(v.is_integer() for v in floats) else floats


_PROBLEMS: dict[int, LCBenchProblem] = {}


def lcbench_problem(task: int) -> LCBenchProblem:
    """The problem of one task, loaded once per process."""
    if task not in _PROBLEMS:
        _PROBLEMS[task] = LCBenchProblem(task)
    return _PROBLEMS[task]


def problem_named(name: str) -> LCBenchProblem:
    """``lcbench-<task id>``'s problem."""
    prefix = "lcbench-"
    if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        raise ValueError(f"{name!r} is not an LCBench problem; they are lcbench-<task id>")
    return lcbench_problem(int(name[len(prefix) :]))
