"""Predictor-guided hyperparameter search as a keras-tuner plugin.

The method of Lombardi et al. (2026): train a few networks fully, fit an SVR + Random Forest
predictor of the final loss from the hyperparameters and the early loss curve, explore by
sampling from probabilities allocated with an exponential reward, train exploration trials
only to an early budget, and resume the most promising ones to the full budget.
"""

from kt_predictive.allocation import exponential_reward, linear_reward
from kt_predictive.budget import StepBudget
from kt_predictive.oracle import PredictiveOracle
from kt_predictive.predictor import FeatureEncoder, HybridPredictor
from kt_predictive.tuner import PredictiveSearch, PredictiveTuner

__all__ = [
    "FeatureEncoder",
    "HybridPredictor",
    "PredictiveOracle",
    "PredictiveSearch",
    "PredictiveTuner",
    "StepBudget",
    "exponential_reward",
    "linear_reward",
]
