"""Tables of real learning curves: collected once by a bench/collect_*_curves.py script,
replayed by :class:`search.problems.TableProblem` for many searches.

A table holds, for an exhaustive grid of configurations, every step's loss of one or more
real trainings per configuration. A file (``.npz``) has:

- ``space``: JSON ``{name: [values]}``, the grid, in hyperparameter order;
- ``hp_index`` (runs, hyperparameters): each run's value indices into ``space``;
- ``train_seed`` (runs): the training seed of each run;
- ``curves`` (runs, full_steps): loss after each step; a diverged run has a non-finite loss
  at the step it diverged and NaN after it;
- ``seconds`` (runs): training time of each run;
- ``meta``: JSON of the settings the curves were collected with (a resumed collection must
  have the same ones).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kt_predictive.storage import atomic_write


@dataclass
class CurveTable:
    """Real learning curves of a grid of configurations (see the module docstring)."""

    space: dict[str, list]
    meta: dict
    full_steps: int
    hp_index: list[tuple[int, ...]] = field(default_factory=list)
    train_seed: list[int] = field(default_factory=list)
    curves: list[np.ndarray] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runs: dict[tuple[int, ...], list[int]] = {}
        for run, key in enumerate(self.hp_index):
            self._runs.setdefault(tuple(key), []).append(run)

    # ------------------------------------------------------------------ the grid

    @property
    def names(self) -> list[str]:
        return list(self.space)

    def grid(self) -> list[tuple[int, ...]]:
        """Every configuration of the space as value indices, in a fixed order."""
        return list(itertools.product(*(range(len(v)) for v in self.space.values())))

    def values(self, indices: Sequence[int]) -> dict:
        """The configuration dict of value indices."""
        return {name: self.space[name][int(i)] for name, i in zip(self.space, indices, strict=True)}

    def indices(self, values: Mapping) -> tuple[int, ...]:
        """The value indices of a configuration; KeyError names a value not in the grid."""
        try:
            return tuple(self.space[name].index(values[name]) for name in self.space)
        except ValueError as error:
            raise KeyError(f"{dict(values)} is not in the table's grid {self.space}") from error

    # ------------------------------------------------------------------ the runs

    def __len__(self) -> int:
        return len(self.curves)

    def add(self, indices: Sequence[int], seed: int, losses: Sequence[float], seconds: float):
        """Appends a run; a run shorter than ``full_steps`` (diverged) is padded with NaN."""
        curve = np.full(self.full_steps, np.nan, dtype=np.float64)
        curve[: len(losses)] = losses
        key = tuple(int(i) for i in indices)
        self._runs.setdefault(key, []).append(len(self.curves))
        self.hp_index.append(key)
        self.train_seed.append(int(seed))
        self.curves.append(curve)
        self.seconds.append(float(seconds))

    def done(self) -> set[tuple[tuple[int, ...], int]]:
        """The (configuration, training seed) pairs already in the table."""
        return set(zip(self.hp_index, self.train_seed, strict=True))

    def runs_of(self, values: Mapping) -> list[int]:
        """The table's runs of a configuration (KeyError if it has none)."""
        runs = self._runs.get(self.indices(values))
        if not runs:
            raise KeyError(f"the table has no run of {dict(values)}")
        return runs

    def curve(self, values: Mapping, seed: int) -> np.ndarray:
        """The measured curve a search with ``seed`` sees for ``values``.

        A configuration with one run always gives that run. With several, the seed chooses
        one, through a generator seeded by (seed, the configuration's runs), so different
        seeds see different draws of the training noise, and one seed always the same.
        """
        runs = self.runs_of(values)
        if len(runs) == 1:
            return self.curves[runs[0]]
        choice = np.random.default_rng([int(seed), *runs]).integers(len(runs))
        return self.curves[runs[int(choice)]]

    def final_means(self, final_window: int) -> np.ndarray:
        """(runs,) mean loss of the last ``final_window`` steps; inf for a diverged run."""
        curves = np.asarray(self.curves)
        finals = curves[:, -final_window:].mean(axis=1)
        return np.where(np.isfinite(finals), finals, np.inf)

    def best_final(self, final_window: int) -> float:
        """The lowest final mean over the table's runs (the best known real final loss)."""
        return float(np.min(self.final_means(final_window)))

    # ------------------------------------------------------------------ files

    def save(self, path: Path) -> None:
        """Writes the table atomically."""
        arrays = {
            "space": np.array(json.dumps(self.space)),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
            "hp_index": np.array(self.hp_index, dtype=np.int16).reshape(-1, len(self.space)),
            "train_seed": np.array(self.train_seed, dtype=np.int32),
            "curves": np.array(self.curves, dtype=np.float32).reshape(-1, self.full_steps),
            "seconds": np.array(self.seconds, dtype=np.float64),
        }
        atomic_write(path, lambda file: np.savez_compressed(file, **arrays))

    @classmethod
    def load(cls, path: Path) -> CurveTable:
        """Reads a table; FileNotFoundError says which script collects it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no curve table at {path}; collect it with bench/collect_{path.stem}.py"
            )
        with np.load(path) as stored:
            curves = stored["curves"].astype(np.float64)
            return cls(
                space=json.loads(str(stored["space"])),
                meta=json.loads(str(stored["meta"])),
                full_steps=curves.shape[1],
                hp_index=[tuple(int(i) for i in row) for row in stored["hp_index"]],
                train_seed=[int(s) for s in stored["train_seed"]],
                curves=list(curves),
                seconds=[float(s) for s in stored["seconds"]],
            )


def collect(
    path: Path,
    space: dict[str, list],
    full_steps: int,
    meta: dict,
    seeds: Sequence[int],
    train: Callable[[dict, int], Sequence[float]],
    max_minutes: float | None = None,
    save_every: int = 1,
    log=print,
) -> tuple[CurveTable, float]:
    """Trains every (configuration, seed) of the grid not yet in the table at ``path``.

    ``train(values, seed)`` returns the losses of one training (shorter than ``full_steps``
    when it diverged). Seed by seed (all configurations with the first seed, then the next),
    saving the table every ``save_every`` runs, so a stopped collection keeps what it trained
    and resumes. Stops starting new runs after ``max_minutes``. Returns the table and the
    seconds this call spent.
    """
    meta = json.loads(json.dumps(meta, sort_keys=True))
    if Path(path).is_file():
        table = CurveTable.load(path)
        if table.meta != meta or table.space != json.loads(json.dumps(space)):
            raise ValueError(
                f"{path} was collected with other settings ({table.meta}); delete it or pass "
                "another --out to collect these"
            )
    else:
        table = CurveTable(json.loads(json.dumps(space)), meta, full_steps)
    done = table.done()
    jobs = [(c, s) for s in seeds for c in table.grid() if (c, s) not in done]
    log(f"{len(table)} runs in {path}; {len(jobs)} to train")
    started = time.perf_counter()
    for count, (indices, seed) in enumerate(jobs, 1):
        if max_minutes is not None and time.perf_counter() - started > 60 * max_minutes:
            log(f"stopped after {max_minutes} min; {len(jobs) - count + 1} runs left")
            break
        began = time.perf_counter()
        losses = train(table.values(indices), seed)
        table.add(indices, seed, losses, time.perf_counter() - began)
        if count % save_every == 0 or count == len(jobs):
            table.save(path)
            elapsed = time.perf_counter() - started
            log(
                f"[{count}/{len(jobs)}] {elapsed / 60:.1f} min, about "
                f"{elapsed / count * (len(jobs) - count) / 60:.1f} min left"
            )
    table.save(path)
    return table, time.perf_counter() - started


def collection_markdown(
    title: str, table: CurveTable, what: str, command: str, final_window: int
) -> str:
    """The RESULTS.md section of a collection script: what was collected and its cost."""
    finals = table.final_means(final_window)
    finite = finals[np.isfinite(finals)]
    configs = len(set(table.hp_index))
    grid = "; ".join(f"{name} {values}" for name, values in table.space.items())
    seeds = sorted(set(table.train_seed))
    seconds = np.asarray(table.seconds)
    return "\n".join(
        [
            f"## {title}",
            "",
            f"- Reproduce: `{command}` (resumable: runs already in the table are kept).",
            f"- What: {what}",
            f"- Grid ({configs} of {len(table.grid())} configurations collected): {grid}.",
            f"- Runs: {len(table)} ({len(seeds)} training seed(s): {seeds}), "
            f"{table.full_steps} steps each; {int(np.sum(~np.isfinite(finals)))} diverged.",
            f"- Training time: {seconds.sum() / 60:.1f} min in all (the sum over runs; "
            f"{np.median(seconds):.2f} s median per run, {seconds.max():.2f} s longest), at "
            "`nice -n 19` on a machine shared with other jobs.",
            f"- Final loss (mean of the last {final_window} steps) over the runs that did not "
            f"diverge: best {finite.min():.4g}, median {np.median(finite):.4g}, worst "
            f"{finite.max():.4g}.",
        ]
    )
