"""Predictor-guided hyperparameter search as a keras-tuner plugin.

The method of Lombardi et al. (2026): train a few networks fully, fit an SVR + Random Forest
predictor of the final loss from the hyperparameters and the early loss curve, explore by
sampling from probabilities allocated with an exponential reward, train exploration trials
only to an early budget, and resume the most promising ones to the full budget.
"""

from kt_predictive.allocation import AllocationRule, exponential_reward, linear_reward
from kt_predictive.budget import StepBudget, early_means, final_mean, window_mean
from kt_predictive.callbacks import StepBudgetCallback, StepLossRecorder
from kt_predictive.checkpoint import load_training_state, save_training_state, training_state_path
from kt_predictive.decisions import SearchDecisions, report_test_size
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
from kt_predictive.records import (
    RecordBook,
    SearchSnapshot,
    TrialRecord,
    read_search,
    training_steps,
)
from kt_predictive.reporting import TrialReporter
from kt_predictive.schedule import PhaseSizes, size_phases
from kt_predictive.storage import atomic_write, read_json, write_json
from kt_predictive.tuner import PredictiveSearch, PredictiveTuner

__all__ = [
    "AllocationRule",
    "CorruptStateError",
    "FatalSearchError",
    "FeatureEncoder",
    "HybridPredictor",
    "PhaseSizes",
    "PredictiveOracle",
    "PredictiveSearch",
    "PredictiveTuner",
    "RecordBook",
    "SearchDecisions",
    "SearchError",
    "SearchLockedError",
    "SearchNotFoundError",
    "SearchSnapshot",
    "StepBudget",
    "StepBudgetCallback",
    "StepLossRecorder",
    "StorageError",
    "TrialRecord",
    "TrialReporter",
    "atomic_write",
    "early_means",
    "exponential_reward",
    "final_mean",
    "linear_reward",
    "load_training_state",
    "read_json",
    "read_search",
    "report_test_size",
    "save_training_state",
    "size_phases",
    "training_state_path",
    "training_steps",
    "window_mean",
    "write_json",
]
