"""Predictor-guided hyperparameter search as a keras-tuner plugin.

The method of Lombardi et al. (2026): train a few networks fully, fit an SVR + Random Forest
predictor of the final loss from the hyperparameters and the early loss curve, explore by
sampling from probabilities allocated with an exponential reward, train exploration trials
only to an early budget, and resume the most promising ones to the full budget.

The public API is below; helpers (loss statistics, training-state files, JSON storage, the
phase sizing) live in their modules (``kt_predictive.budget``, ``.checkpoint``,
``.storage``, ``.schedule``, ...).

Example:
    >>> from kt_predictive import PredictiveOracle, Schedule, TrainingSteps
    >>> oracle = PredictiveOracle(
    ...     steps=TrainingSteps(full_steps=400, early_steps=80, window=20, final_window=80),
    ...     schedule=Schedule(initial_trials=6, max_iterations=20, top_k=3))
    >>> oracle.phase, oracle.initial_trials
    ('initial', 6)
"""

from kt_predictive.allocation import AllocationRule
from kt_predictive.budget import TrainingSteps
from kt_predictive.errors import (
    CorruptStateError,
    FatalSearchError,
    SearchError,
    SearchLockedError,
    SearchNotFoundError,
    StorageError,
)
from kt_predictive.oracle import PredictiveOracle
from kt_predictive.predictor import FeatureEncoder, HybridPredictor
from kt_predictive.records import SearchSnapshot, TrialRecord, read_search
from kt_predictive.reporting import TrialReporter
from kt_predictive.settings import PredictorSettings, Schedule, Screening
from kt_predictive.tuner import PredictiveSearch, PredictiveTuner

__all__ = [
    "AllocationRule",
    "CorruptStateError",
    "FatalSearchError",
    "FeatureEncoder",
    "HybridPredictor",
    "PredictiveOracle",
    "PredictiveSearch",
    "PredictiveTuner",
    "PredictorSettings",
    "Schedule",
    "Screening",
    "SearchError",
    "SearchLockedError",
    "SearchNotFoundError",
    "SearchSnapshot",
    "StorageError",
    "TrainingSteps",
    "TrialRecord",
    "TrialReporter",
    "read_search",
]
