"""scikit-learn's MLPClassifier on scikit-learn's digits, one ``partial_fit`` epoch per step.

Shared by the curve collection (bench/collect_mlp_curves.py) and the replay-vs-real check
(``search.problems.MLPRealProblem``), so both train exactly the same way: 75% of the digits
to train and 25% to validate (stratified, fixed split); the curve is the validation log-loss
after every epoch; a training whose weights or loss stop being finite reports inf.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier


def data():
    digits = load_digits()
    return train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )


X_TRAIN, X_VAL, Y_TRAIN, Y_VAL = data()
CLASSES = np.unique(Y_TRAIN)


def make_model(values: Mapping, seed: int) -> MLPClassifier:
    """An untrained MLPClassifier of configuration ``values`` (MLP_GRID's names)."""
    return MLPClassifier(
        hidden_layer_sizes=tuple(int(n) for n in values["hidden"].split("-")),
        activation=values["activation"],
        solver=values["solver"],
        learning_rate_init=values["learning_rate_init"],
        alpha=values["alpha"],
        batch_size=values["batch_size"],
        random_state=seed,
    )


def train_epoch(model: MLPClassifier) -> float:
    """One pass over the training data; returns the validation log-loss (inf if the
    training stopped being finite)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to diverging
        try:
            model.partial_fit(X_TRAIN, Y_TRAIN, classes=CLASSES)
            loss = log_loss(Y_VAL, model.predict_proba(X_VAL), labels=CLASSES)
        except ValueError:  # "non-finite parameter weights" and the like
            return math.inf
    return float(loss) if math.isfinite(loss) else math.inf
