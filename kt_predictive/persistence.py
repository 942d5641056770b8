"""Where a :class:`~kt_predictive.PredictiveOracle` keeps its search, and how it reads it back.

A search folder (``directory/project_name``) holds ``oracle.json`` (keras-tuner's state and
the decisions, :meth:`~kt_predictive.decisions.SearchDecisions.state`) and one folder per
trial with keras-tuner's ``trial.json`` and the :class:`~kt_predictive.records.TrialRecord`
(``record.json``). Every write is atomic; an unreadable file is one clear error.
"""

from __future__ import annotations

import glob
import os
import shutil

from keras_tuner.engine import trial as trial_module

from kt_predictive.errors import FatalSearchError, SearchError
from kt_predictive.records import RECORD_FILE, TrialRecord
from kt_predictive.storage import read_json, write_json

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

    def save(self):
        write_json(self._get_oracle_fname(), self.get_state())

    def _save_record(self, record: TrialRecord) -> None:
        path = os.path.join(self._get_trial_dir(record.trial_id), RECORD_FILE)
        write_json(path, record.to_json())

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        write_json(path, trial.get_state())

    def reload(self):
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
        # their last checkpoint). keras-tuner saves a trial that just ended while it is still
        # listed as ongoing; a kill at that moment must not run a finished trial again.
        records = self._decisions.records
        self._retry_queue.extend(
            trial.trial_id
            for trial in self.ongoing_trials.values()
            if (record := records.get(trial.trial_id)) is None or record.running
        )
        self.ongoing_trials = {}
