"""What the oracle knows about one trial: the typed record behind every decision and report.

Three kinds of trial (``TrialRecord.role``):

- ``"initial"`` — phase 1: a uniformly drawn configuration trained to the full budget (or,
  in a screened phase 1, screened to the early budget like an explored one);
- ``"explore"`` — phase 3: a configuration drawn from the probabilities, trained to the early
  budget only; its final loss is *predicted*;
- ``"continuation"`` — phase 4: a new trial that resumes an explored trial (its ``parent_id``)
  from the parent's early checkpoint and trains it to the full budget, keras-tuner's
  Hyperband style (the parent keeps its own record, unchanged). A screened phase 1 continues
  its best phase-1 trials the same way.

A record's real final loss and its predicted one are separate fields: a loss is never one or
the other depending on a flag. A failed trial (diverged, crashed, or run out of retries) has
no final loss at all; the allocation counts it as the worst loss seen (``worst``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kt_predictive.errors import SearchError, SearchNotFoundError

Role = Literal["initial", "explore", "continuation"]
Status = Literal["running", "complete", "failed"]

ROLES: tuple[Role, ...] = ("initial", "explore", "continuation")
# Values that keras-tuner's own oracles add to a trial's hyperparameters (Hyperband's
# "tuner/trial_id" link to the parent): bookkeeping, not part of the configuration.
TUNER_VALUE_PREFIX = "tuner/"
PARENT_VALUE = "tuner/trial_id"
# A continuation's first step is the one after this (its parent's steps): it reports only
# steps after it (keras-tuner's Hyperband says "tuner/initial_epoch").
INITIAL_STEP_VALUE = "tuner/initial_step"
# Each record is saved in its trial folder; oracle.json lists the trial ids and holds the
# decisions. The version changes when that layout or the record's fields change.
RECORD_FILE = "record.json"
STATE_VERSION = 2


def configuration(values: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameter values of a trial without keras-tuner's bookkeeping entries."""
    return {
        name: value for name, value in values.items() if not name.startswith(TUNER_VALUE_PREFIX)
    }


@dataclass
class TrialRecord:
    """One trial of a :class:`~kt_predictive.PredictiveOracle` search.

    Attributes:
        trial_id: keras-tuner's trial id.
        values: The configuration (hyperparameter values, no ``tuner/`` entries).
        role: ``"initial"``, ``"explore"`` or ``"continuation"``.
        early: The objective's mean over each early window (``None`` until reported).
        real_final: The measured final mean (last ``final_window`` steps of ``full_steps``);
            ``None`` unless the trial trained fully.
        predicted: The predictor's estimate of the final mean (explored trials and their
            continuations).
        status: ``"running"``, ``"complete"`` or ``"failed"``.
        steps: Optimizer steps trained (a continuation counts from the parent's start).
        seconds: Training time in seconds (a continuation includes its parent's).
        iteration: For ``"explore"`` records, the exploration iteration (1-based) that drew
            the configuration; ``None`` otherwise.
        parent_id: For ``"continuation"`` records, the explored trial it resumes.
        diverged_at: The step at which the objective stopped being finite, if it did.
        screened_at: For ``"explore"`` records stopped by screening, the rung (step) at which
            their window mean was not among the best (:mod:`kt_predictive.screening`).
        failure: Why a failed trial failed (one line), if known.
    """

    trial_id: str
    values: dict[str, Any]
    role: Role
    early: list[float | None]
    real_final: float | None = None
    predicted: float | None = None
    status: Status = "running"
    steps: int = 0
    seconds: float = 0.0
    iteration: int | None = None
    parent_id: str | None = None
    diverged_at: int | None = None
    screened_at: int | None = None
    failure: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise SearchError(f"role must be one of {ROLES} (got {self.role!r})")

    # -------------------------------------------------------------- predicates, in one place

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def settled(self) -> bool:
        """The oracle has recorded the trial's outcome (complete or failed)."""
        return self.status != "running"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def is_real(self) -> bool:
        """Completed with a measured final loss: the only records that can win a search."""
        return self.status == "complete" and self.real_final is not None

    @property
    def is_predicted_only(self) -> bool:
        """An explored trial stopped at the early budget, known by its prediction only."""
        return self.status == "complete" and self.real_final is None and self.predicted is not None

    @property
    def screened_out(self) -> bool:
        """An explored trial stopped at a screening rung: never a candidate."""
        return self.status == "complete" and self.screened_at is not None

    @property
    def early_complete(self) -> bool:
        return bool(self.early) and None not in self.early

    @property
    def score(self) -> float:
        """The trial's score ("lower is better"): the measured final loss, else the
        prediction of an explored trial, else infinity (failed or unsettled)."""
        if self.is_real:
            return self.real_final
        return self.predicted if self.is_predicted_only else math.inf

    def loss(self) -> float | None:
        """The final loss the allocation counts: measured if there is one, else predicted."""
        if self.real_final is not None:
            return self.real_final
        return self.predicted

    # -------------------------------------------------------------- JSON

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SearchError(f"unknown trial record fields {unknown}")
        return cls(**{key: _plain_json(value) for key, value in data.items()})


def _plain_json(value: Any) -> Any:
    # JSON has no infinities in strict readers; failed records keep None instead.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def training_steps(records: Iterable[TrialRecord]) -> int:
    """Optimizer steps trained by these trials (a continuation's own steps only, not its
    parent's again)."""
    records = list(records)
    steps = {r.trial_id: r.steps for r in records}
    # A continuation that has not reported yet has trained nothing of its own (not minus its
    # parent's steps).
    return sum(max(0, r.steps - (steps.get(r.parent_id, 0) if r.parent_id else 0)) for r in records)


@dataclass
class RecordBook:
    """The records of a search, in creation order, with the queries the oracle asks of them."""

    records: dict[str, TrialRecord] = field(default_factory=dict)
    # parent trial id -> its continuation's trial id (continuation_of runs in loops).
    _children: dict[str, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records.values())

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self.records

    def get(self, trial_id: str) -> TrialRecord | None:
        return self.records.get(trial_id)

    def __getitem__(self, trial_id: str) -> TrialRecord:
        return self.records[trial_id]

    @classmethod
    def of(cls, records: Iterable[TrialRecord]) -> RecordBook:
        """A book of ``records`` (e.g. a report's list), in their order."""
        book = cls()
        for record in records:
            book.add(record)
        return book

    def add(self, record: TrialRecord) -> TrialRecord:
        self.records[record.trial_id] = record
        if record.parent_id is not None:
            self._children[record.parent_id] = record.trial_id
        return record

    def by_role(self, role: Role) -> list[TrialRecord]:
        return [r for r in self.records.values() if r.role == role]

    def running(self, role: Role | None = None) -> list[TrialRecord]:
        return [r for r in self.records.values() if r.running and (role is None or r.role == role)]

    def real(self) -> list[TrialRecord]:
        """Records with a measured final loss, best first."""
        return sorted((r for r in self.records.values() if r.is_real), key=lambda r: r.real_final)

    def in_phase1(self, record: TrialRecord) -> bool:
        """Whether ``record`` belongs to phase 1: a uniformly drawn configuration, or the
        continuation of one (a screened phase 1 trains its best this way)."""
        if record.role == "initial":
            return True
        parent = self.get(record.parent_id) if record.parent_id else None
        return parent is not None and parent.role == "initial"

    def phase1_networks(self) -> list[TrialRecord]:
        """Phase 1's fully trained networks (real final loss), in creation order."""
        return [r for r in self.records.values() if r.is_real and self.in_phase1(r)]

    def continuation_of(self, parent_id: str) -> TrialRecord | None:
        child = self._children.get(parent_id)
        return self.records[child] if child is not None else None


@dataclass
class SearchSnapshot:
    """What a search folder holds, read without a model or an oracle (reports, monitoring).

    Attributes:
        phase: ``"initial"``, ``"explore"``, ``"finalize"`` or ``"done"``.
        records: ``{trial_id: TrialRecord}`` in creation order.
        state: The rest of the oracle's saved state (settings, grids, thresholds,
            probabilities, history, fixed values, exploration_end, predictor report).
    """

    phase: str
    records: dict[str, TrialRecord]
    state: dict[str, Any]


def read_search(project_dir: str | os.PathLike) -> SearchSnapshot:
    """Reads the search saved in ``project_dir`` (the folder holding ``oracle.json``).

    Raises:
        SearchNotFoundError: (a FileNotFoundError) when the folder holds no search.
        CorruptStateError: when a state file cannot be read.
        SearchError: when the folder holds another oracle's search or an older state version.
    """
    from kt_predictive.storage import read_json  # storage has no dependency on records

    project_dir = Path(project_dir)
    oracle_file = project_dir / "oracle.json"
    if not oracle_file.is_file():
        raise SearchNotFoundError(
            f"{oracle_file} does not exist; pass the folder of a search (directory/project_name)"
        )
    recovery = "Restore it from a backup; the search cannot be read without it"
    saved = read_json(oracle_file, recovery).get("predictive")
    if saved is None:
        raise SearchError(f"{project_dir} holds a search by another keras-tuner oracle")
    if saved.get("version") != STATE_VERSION:
        raise SearchError(
            f"{project_dir} holds a search saved by an older kt_predictive (state version "
            f"{saved.get('version', 1)}; this one reads {STATE_VERSION})"
        )
    records = read_records(project_dir, saved["trial_ids"], recovery).records
    return SearchSnapshot(saved["phase"], records, saved)


def read_records(
    project_dir: str | os.PathLike, trial_ids: Iterable[str], recovery: str
) -> RecordBook:
    """The records of ``trial_ids``, each from its trial folder in ``project_dir``.

    Raises:
        CorruptStateError: naming an unreadable record file and ``recovery``.
    """
    from kt_predictive.storage import read_json

    book = RecordBook()
    for trial_id in trial_ids:
        path = Path(project_dir) / f"trial_{trial_id}" / RECORD_FILE
        book.add(TrialRecord.from_json(read_json(path, recovery)))
    return book


def first_line(message: str | None) -> str | None:
    """The last non-empty line of an error message (a traceback's), at most 200 characters:
    a failed record's ``failure``."""
    if not message:
        return None
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else None
