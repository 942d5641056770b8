"""The performance predictor: SVR + Random Forest hybrid (HYB), and its feature encoding.

Features of a trial, in this order (:class:`FeatureEncoder`):

1. every hyperparameter, in declaration order: numeric values as numbers, log10 of them when
   the grid spans a decade or more (learning rates); booleans as 0/1; strings one-hot (one
   column per value, all zero for an inactive conditional hyperparameter);
2. the mean training loss of each early window.

The label is the trial's final mean loss. HYB predicts the mean of a scaled RBF-SVR and a
RandomForestRegressor, as in the paper (section 2.2.2). With ``target="improvement"`` both
models learn the improvement of the final mean over the last early window mean (the last
feature) instead: with few training networks, a model that knows nothing predicts "as good
as its early loss", which ranks candidates like the i-epoch baseline, rather than "as good as
the average network".

A regressor extrapolates past what the objective can take (a negative MSE): the search passes
every prediction through :func:`keep_sign`, which keeps the predictions of a non-negative
objective above 0 (and of a non-positive one below 0) without changing their order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from kt_predictive.errors import SearchError
from kt_predictive.space import Value, ValueGrid

MODELS = ("svr", "rf", "hyb")


class FeatureEncoder:
    """Turns (hyperparameter values, early window means) into one feature row.

    Args:
        grids: The value grids of the search space.
        n_windows: Number of early window means per trial.
    """

    def __init__(self, grids: Sequence[ValueGrid], n_windows: int):
        self.grids = list(grids)
        self.n_windows = n_windows

    @property
    def feature_names(self) -> list[str]:
        names = []
        for grid in self.grids:
            if grid.kind == "categorical":
                names += [f"{grid.name}={value}" for value in grid.values]
            elif grid.log_scale:
                names.append(f"log10({grid.name})")
            else:
                names.append(grid.name)
        return names + [f"window_{i + 1}" for i in range(self.n_windows)]

    def encode(self, values: Mapping[str, Value], early: Sequence[float]) -> np.ndarray:
        """One feature row. Raises ValueError for a wrong number of window means."""
        if len(early) != self.n_windows:
            raise SearchError(f"expected {self.n_windows} early window means, got {len(early)}")
        row: list[float] = []
        for grid in self.grids:
            value = values.get(grid.name)
            if grid.kind == "categorical":
                one_hot = [0.0] * len(grid)
                if value is not None:
                    one_hot[grid.index(value)] = 1.0
                row += one_hot
                continue
            # An inactive conditional hyperparameter is encoded as its grid's first value.
            number = float(grid.values[0] if value is None else value)
            row.append(math.log10(number) if grid.log_scale else number)
        return np.array(row + [float(m) for m in early], dtype=np.float64)

    def encode_many(
        self, rows: Sequence[tuple[Mapping[str, Value], Sequence[float]]]
    ) -> np.ndarray:
        """A feature matrix, one row per ``(values, early)`` pair."""
        width = len(self.feature_names)
        if not rows:
            return np.zeros((0, width))
        return np.stack([self.encode(values, early) for values, early in rows])


class HybridPredictor(RegressorMixin, BaseEstimator):
    """HYB: the mean of an SVR and a Random Forest, a scikit-learn regressor.

    The SVR works on standardised features and a standardised target (losses are small
    numbers; SVR's epsilon-tube is meant for unit scale). ``tune`` chooses both models'
    hyperparameters with Optuna; ``fit`` and ``predict`` then use them.

    Args:
        svr_params: Keyword arguments of ``sklearn.svm.SVR`` (default: its defaults).
        rf_params: Keyword arguments of ``sklearn.ensemble.RandomForestRegressor``.
        random_state: Seed of the forest, of the tuning and of ``evaluate_splits``.
        target: ``"final"`` (the paper): the models learn the final mean loss;
            ``"improvement"``: they learn final minus the last column of ``X`` (the last
            early window mean, as :class:`FeatureEncoder` orders features) and add it back.
    """

    def __init__(
        self,
        svr_params: Mapping | None = None,
        rf_params: Mapping | None = None,
        random_state: int | None = 0,
        target: str = "final",
    ):
        self.svr_params = svr_params
        self.rf_params = rf_params
        self.random_state = random_state
        self.target = target

    def _offset(self, X: np.ndarray) -> np.ndarray:
        """What the models' outputs are relative to: 0, or the last early window mean."""
        if self.target == "final":
            return np.zeros(len(X))
        if self.target == "improvement":
            return X[:, -1]
        raise SearchError(f"target must be 'final' or 'improvement' (got {self.target!r})")

    def _make_svr(self) -> TransformedTargetRegressor:
        svr = make_pipeline(StandardScaler(), SVR(**dict(self.svr_params or {})))
        return TransformedTargetRegressor(regressor=svr, transformer=StandardScaler())

    def _make_rf(self) -> RandomForestRegressor:
        params = {"n_estimators": 200, **dict(self.rf_params or {})}
        return RandomForestRegressor(random_state=self.random_state, **params)

    def fit(self, X, y) -> HybridPredictor:
        """Fits the SVR and the forest on features ``X`` and final losses ``y``."""
        X, y = _check_xy(X, y)
        y = y - self._offset(X)
        self.svr_ = self._make_svr().fit(X, y)
        self.rf_ = self._make_rf().fit(X, y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict_components(self, X) -> dict[str, np.ndarray]:
        """The SVR, RF and HYB predictions: ``{"svr": ..., "rf": ..., "hyb": ...}``."""
        X = np.asarray(X, dtype=np.float64)
        offset = self._offset(X)
        svr = self.svr_.predict(X) + offset
        rf = self.rf_.predict(X) + offset
        return {"svr": svr, "rf": rf, "hyb": (svr + rf) / 2}

    def predict(self, X) -> np.ndarray:
        """HYB = (SVR + RF) / 2."""
        return self.predict_components(X)["hyb"]

    def tune(self, X, y, n_trials: int = 30, cv: int = 5) -> HybridPredictor:
        """Chooses the SVR's and the forest's hyperparameters with Optuna (TPE).

        Pass the training split only: each candidate is scored by ``cv``-fold
        cross-validated mean absolute error on it. Sets ``svr_params`` and ``rf_params``
        and returns ``self`` (unfitted; call ``fit`` next).
        """
        import optuna

        X, y = _check_xy(X, y)
        y = y - self._offset(X)  # the offset is known exactly: its MAE is the final's
        folds = KFold(n_splits=min(cv, len(y)), shuffle=True, random_state=self.random_state)

        def cv_mae(model) -> float:
            return -cross_val_score(model, X, y, cv=folds, scoring="neg_mean_absolute_error").mean()

        def svr_objective(trial: optuna.Trial) -> float:
            params = {
                "C": trial.suggest_float("C", 1e-2, 1e3, log=True),
                "epsilon": trial.suggest_float("epsilon", 1e-3, 1.0, log=True),
                "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True),
            }
            return cv_mae(clone(self).set_params(svr_params=params)._make_svr())

        def rf_objective(trial: optuna.Trial) -> float:
            params = {
                "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=50),
                "max_depth": trial.suggest_int("max_depth", 2, 16),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 5),
                "max_features": trial.suggest_float("max_features", 0.2, 1.0),
            }
            return cv_mae(clone(self).set_params(rf_params=params)._make_rf())

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            best = {}
            for name, objective in (("svr", svr_objective), ("rf", rf_objective)):
                sampler = optuna.samplers.TPESampler(seed=self.random_state)
                study = optuna.create_study(direction="minimize", sampler=sampler)
                study.optimize(objective, n_trials=n_trials)
                best[name] = study.best_params
        finally:
            optuna.logging.set_verbosity(verbosity)
        return self.set_params(svr_params=best["svr"], rf_params=best["rf"])

    def evaluate_splits(
        self, X, y, n_splits: int = 1000, test_size: int = 20
    ) -> dict[str, dict[str, float]]:
        """The paper's Table 2 protocol: random train/test splits with ``test_size`` tests.

        For each split, clones of the SVR, the forest and HYB are fitted on the rest and
        scored on the test networks.

        Returns:
            ``{"svr"|"rf"|"hyb": {"mae": mean MAE, "mae_std": std of the MAEs, "r2": mean
            R², "r2_pooled": R² of all test predictions together}}``. The mean R² is the
            paper's; with few test networks per split their spread can be tiny and single
            splits' R² hugely negative, which the pooled R² does not suffer from.
        """
        X, y = _check_xy(X, y)
        if not 0 < test_size < len(y) - 1:
            raise SearchError(
                f"test_size={test_size} leaves too few training networks out of {len(y)}; "
                "use a smaller test_size or collect more trials"
            )
        rng = np.random.default_rng(self.random_state)
        maes = {name: [] for name in MODELS}
        r2s = {name: [] for name in MODELS}
        pooled = {name: [] for name in MODELS}
        truths = []
        for _ in range(n_splits):
            order = rng.permutation(len(y))
            test, train = order[:test_size], order[test_size:]
            predictions = clone(self).fit(X[train], y[train]).predict_components(X[test])
            truths.append(y[test])
            for name in MODELS:
                maes[name].append(mean_absolute_error(y[test], predictions[name]))
                r2s[name].append(r2_score(y[test], predictions[name]))
                pooled[name].append(predictions[name])
        truth = np.concatenate(truths)
        return {
            name: {
                "mae": float(np.mean(maes[name])),
                "mae_std": float(np.std(maes[name])),
                "r2": float(np.mean(r2s[name])),
                "r2_pooled": float(r2_score(truth, np.concatenate(pooled[name]))),
            }
            for name in MODELS
        }


def keep_sign(predicted, finals) -> np.ndarray:
    """``predicted`` final values, kept on the side of 0 that every one of ``finals`` (the
    final values the predictor learnt from) is on, without changing their order.

    With every final at or above 0 (a loss, an error rate), a prediction ``p`` below the
    lowest final ``m`` becomes ``m·exp((p - m)/m)``: in (0, m), nearly ``p`` just below ``m``
    (the map's slope at ``m`` is 1), and ever closer to 0 the further below ``m`` it was.
    Mirrored for finals at or below 0 (a maximised objective such as accuracy, which the
    search negates). Predictions on the finals' side of ``m`` are unchanged, and so are all of
    them when the finals lie on both sides of 0. A lowest final of exactly 0 clips at 0.

    >>> keep_sign([-0.9, -0.3, 0.1, 0.5], finals=[0.2, 0.4]).round(4).tolist()
    [0.0008, 0.0164, 0.1213, 0.5]
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    finals = np.asarray(finals, dtype=np.float64)
    if finals.size == 0:
        return predicted
    if finals.min() >= 0:
        lowest = float(finals.min())
        if lowest == 0:
            return np.maximum(predicted, 0.0)
        below = predicted < lowest
        bounded = lowest * np.exp(np.minimum(predicted - lowest, 0.0) / lowest)
        return np.where(below, bounded, predicted)
    if finals.max() <= 0:
        return -keep_sign(-predicted, -finals)
    return predicted


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(y):
        raise SearchError(f"X must be 2-D with one row per label (got X {X.shape}, y {y.shape})")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise SearchError("the predictor's features and labels must be finite (found NaN or inf)")
    if len(y) < 2:
        raise SearchError(f"the predictor needs at least 2 trials to fit (got {len(y)})")
    return X, y
