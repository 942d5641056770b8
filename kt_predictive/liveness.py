"""Which workers of a distributed search are alive, from the news they send.

keras-tuner's chief waits forever for a trial whose worker died. With a timeout, a trial whose
worker sent nothing for that long goes back to the queue and another worker resumes it from
its last checkpoint. Every report counts as news: window means, the final mean, and the
heartbeats :class:`~kt_predictive.callbacks.StepBudgetCallback` sends at every checkpoint and
at least every ``heartbeat_seconds`` of training, so a long silent stretch between the early
budget and the end of a full training is never mistaken for a death.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kt_predictive.errors import SearchError


class WorkerLiveness:
    """Monotonic times of the last news of each running trial and each worker.

    Not saved with the search: a reloaded search sends its running trials to be run again
    anyway.

    Args:
        timeout: Seconds without news after which a trial's worker counts as dead; ``None``
            waits forever (keras-tuner's behaviour).
    """

    def __init__(self, timeout: float | None):
        if timeout is not None and not timeout > 0:
            raise SearchError(
                f"worker_timeout must be a positive number of seconds or None (got {timeout!r})"
            )
        self.timeout = timeout
        self._trials: dict[str, float] = {}
        self._workers: dict[str, float] = {}

    def heard_from_worker(self, tuner_id: str) -> None:
        self._workers[tuner_id] = time.monotonic()

    def heard_about_trial(self, trial_id: str, tuner_ids: Iterable[str] = ()) -> None:
        now = time.monotonic()
        self._trials[trial_id] = now
        for tuner_id in tuner_ids:
            self._workers[tuner_id] = now

    def oracle_was_busy(self, trial_ids: Iterable[str]) -> None:
        """Restarts the clocks of running trials after the oracle blocked (tuning or refitting
        the predictor): no worker could report while it did."""
        now = time.monotonic()
        for trial_id in trial_ids:
            self._trials[trial_id] = now

    def silent_for(self, trial_id: str) -> float:
        """Seconds since the last news of ``trial_id`` (0 if there never was any)."""
        now = time.monotonic()
        return now - self._trials.get(trial_id, now)

    def trial_is_silent(self, trial_id: str) -> bool:
        return self.timeout is not None and self.silent_for(trial_id) > self.timeout

    def requeue_message(self, tuner_id: str, trial_id: str) -> str:
        """What the search says when a silent worker's trial goes to another worker."""
        return (
            f"worker {tuner_id} sent nothing about trial {trial_id} for "
            f"{self.silent_for(trial_id):.0f} s (worker_timeout "
            f"{self.timeout:g} s); the trial goes to another worker"
        )

    def stale_workers(self, tuner_ids: Iterable[str]) -> set[str]:
        """Workers silent for longer than the timeout (none without a timeout)."""
        if self.timeout is None:
            return set()
        now = time.monotonic()
        return {t for t in tuner_ids if now - self._workers.get(t, now) > self.timeout}
