"""Where a :class:`~kt_predictive.PredictiveOracle` keeps its search, and how it reads it back.

A search folder (``directory/project_name``) holds ``oracle.json`` (keras-tuner's state and
the decisions, :meth:`~kt_predictive.decisions.SearchDecisions.state`) and one folder per
trial with keras-tuner's ``trial.json`` and the :class:`~kt_predictive.records.TrialRecord`
(``record.json``). Each oracle event (a trial created, reported, ended or sent to another
worker) writes its files as one atomic state transition (:mod:`~kt_predictive.transitions`);
an unreadable file is one clear error.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

from keras_tuner.engine import trial as trial_module

from kt_predictive.errors import FatalSearchError, SearchError
from kt_predictive.records import RECORD_FILE, TrialRecord
from kt_predictive.storage import read_json, write_json
from kt_predictive.transitions import Transition, commit, recover

RECOVERY = (
    "Restore it from a backup, or start over with overwrite=True (which discards this search)"
)


class SearchFiles:
    """The saving and reloading of :class:`~kt_predictive.PredictiveOracle` (a mixin of
    keras-tuner ``Oracle`` methods; the state itself is ``get_state``/``set_state``)."""

    def open(
        self, directory: str | os.PathLike, project_name: str = "search", overwrite: bool = False
    ):
        """Points the oracle at the search folder ``directory/project_name`` and reads back
        the search saved there, if any (what a keras-tuner ``Tuner`` does for its oracle).

        Use it to drive the oracle from a loop of your own, without a tuner:
        ``create_trial``, ``update_trial`` and ``end_trial`` then save to that folder, and a
        second ``open`` of the same folder resumes the search. ``overwrite=True`` discards
        a search saved there. Returns the oracle.

        >>> import tempfile, keras_tuner
        >>> from kt_predictive import PredictiveOracle, TrainingSteps
        >>> space = keras_tuner.HyperParameters()
        >>> _ = space.Choice("units", [8, 16])
        >>> folder = tempfile.mkdtemp()
        >>> oracle = PredictiveOracle(hyperparameters=space, search_budget=8,
        ...     steps=TrainingSteps(8, 2, 2, 2), seed=1).open(folder, "demo")
        >>> oracle.create_trial("tuner0").status
        'RUNNING'
        """
        self._set_project_dir(os.fspath(directory), project_name)
        if overwrite:
            shutil.rmtree(self._project_dir)  # recreated empty by the next save
        if os.path.exists(self._get_oracle_fname()):
            self.reload()
        return self

    @property
    def _project_dir(self):
        if getattr(self, "_directory", None) is None:
            raise SearchError(
                "the oracle has no folder to keep its search in: call "
                "oracle.open(directory, project_name) before create_trial, or let a "
                "PredictiveSearch drive it"
            )
        path = os.path.join(str(self._directory), self._project_name)
        os.makedirs(path, exist_ok=True)
        return path

    @contextlib.contextmanager
    def _transition(self) -> Iterator[None]:
        """Collects the files the enclosed event writes and the checkpoints it releases,
        and commits them as one state transition when it ends (raised or not: what it
        decided before raising is kept, as when each file was written at once)."""
        if getattr(self, "_staged", None) is not None:  # inside an event already
            yield
            return
        self._staged: dict[str, Callable[[], Any]] = {}
        self._staged_releases: list[str] = []
        try:
            yield
        finally:
            staged, released = self._staged, self._staged_releases
            self._staged = None
            files = {name: produce() for name, produce in staged.items()}
            commit(self._project_dir, Transition(files, released), self.release_checkpoints)

    def _write(self, name: str, produce: Callable[[], Any]) -> None:
        """Writes ``produce()`` to ``name`` (relative to the search folder): at the end of
        the event under way, with the latest content, or now outside one."""
        if getattr(self, "_staged", None) is not None:
            self._staged[name] = produce
        else:
            write_json(os.path.join(self._project_dir, name), produce())

    def _release(self, trial_ids: list[str]) -> None:
        """Releases early checkpoints: deleted once the event that released them is
        durable (they are the state a rerun of an unsaved event would need)."""
        if not trial_ids:
            return
        if getattr(self, "_staged", None) is not None:
            self._staged_releases.extend(trial_ids)
        elif self.release_checkpoints is not None:
            self.release_checkpoints(trial_ids)

    def save(self):
        self._write(os.path.basename(self._get_oracle_fname()), self.get_state)

    def _save_record(self, record: TrialRecord) -> None:
        self._trial_dir_made(record.trial_id)
        self._write(f"trial_{record.trial_id}/{RECORD_FILE}", record.to_json)

    def _save_trial(self, trial):
        self._trial_dir_made(trial.trial_id)
        self._write(f"trial_{trial.trial_id}/trial.json", trial.get_state)

    def _trial_dir_made(self, trial_id: str) -> None:
        self._get_trial_dir(trial_id)  # keras-tuner creates a trial's folder here

    def reload(self):
        # A transition a kill interrupted is applied first: the files then hold the state
        # after the last event that committed.
        recover(self._project_dir, self.release_checkpoints, RECOVERY)
        with self._transition():
            self._reload()

    def _reload(self):
        # keras-tuner's own reload, with one clear error for a file a kill or a full disk
        # left unreadable, instead of a bare JSONDecodeError.
        for fname in sorted(glob.glob(os.path.join(self._project_dir, "trial_*", "trial.json"))):
            trial = trial_module.Trial.from_state(read_json(fname, RECOVERY))
            self.trials[trial.trial_id] = trial
        state = read_json(self._get_oracle_fname(), RECOVERY)
        if "predictive" not in state:
            raise FatalSearchError(
                f"{self._project_dir} holds a search by another keras-tuner oracle; use a new "
                "project_name or overwrite=True"
            )
        self.set_state(state)
        # Trials that were running when the search stopped run again (and resume from
        # their last checkpoint), except those whose reports already ended their run (a
        # kill came before end_trial): they are ended, not trained again. keras-tuner saves
        # a trial that just ended while it is still listed as ongoing; a kill at that moment
        # must not run a finished trial again.
        records = self._decisions.records
        for trial in self.ongoing_trials.values():
            record = records.get(trial.trial_id)
            if record is not None and not record.running:
                continue
            if record is not None and self._decisions.run_is_over(record):
                self._runs_over.append(trial.trial_id)
            else:
                self._retry_queue.append(trial.trial_id)
        self.ongoing_trials = {}
