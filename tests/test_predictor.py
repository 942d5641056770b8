"""The HYB predictor and its feature encoding."""

import math

import numpy as np
import pytest

from kt_predictive import FeatureEncoder, HybridPredictor
from kt_predictive.predictor import keep_sign
from kt_predictive.space import ValueGrid


def _synthetic_curves(n=60, seed=0):
    """Final loss = a smooth function of the last early window and the learning rate."""
    rng = np.random.default_rng(seed)
    lr = 10.0 ** rng.uniform(-5, -2, n)
    early = rng.uniform(0.01, 0.1, (n, 3)).cumsum(axis=1)[:, ::-1]
    y = 0.5 * early[:, -1] + 0.002 * np.log10(lr) + rng.normal(0, 0.001, n)
    return np.column_stack([np.log10(lr), early]), y


def test_feature_encoding_layout():
    grids = [
        ValueGrid("LR", (2e-5, 2e-4, 2e-3, 2e-2), "numeric", log_scale=True),
        ValueGrid("NK", (32, 64), "numeric"),
        ValueGrid("OPT", ("Adam", "SGD"), "categorical"),
        ValueGrid("BN", (False, True), "boolean"),
    ]
    encoder = FeatureEncoder(grids, n_windows=2)
    assert encoder.feature_names == [
        "log10(LR)",
        "NK",
        "OPT=Adam",
        "OPT=SGD",
        "BN",
        "window_1",
        "window_2",
    ]
    row = encoder.encode({"LR": 2e-3, "NK": 64, "OPT": "SGD", "BN": True}, [0.5, 0.25])
    np.testing.assert_allclose(row, [math.log10(2e-3), 64, 0, 1, 1, 0.5, 0.25])
    with pytest.raises(ValueError, match="expected 2 early window means"):
        encoder.encode({"LR": 2e-3, "NK": 64, "OPT": "SGD", "BN": True}, [0.5])


def test_fit_predict_learns_and_is_deterministic():
    X, y = _synthetic_curves()
    first = HybridPredictor(random_state=3).fit(X[:45], y[:45]).predict(X[45:])
    second = HybridPredictor(random_state=3).fit(X[:45], y[:45]).predict(X[45:])
    np.testing.assert_array_equal(first, second)
    # It learned the relation: far better than predicting the training mean.
    baseline = np.abs(y[45:] - y[:45].mean()).mean()
    assert np.abs(first - y[45:]).mean() < 0.5 * baseline


def test_hyb_is_the_mean_of_svr_and_rf():
    X, y = _synthetic_curves()
    predictor = HybridPredictor(random_state=0).fit(X, y)
    parts = predictor.predict_components(X[:5])
    np.testing.assert_allclose(parts["hyb"], (parts["svr"] + parts["rf"]) / 2)
    np.testing.assert_allclose(predictor.predict(X[:5]), parts["hyb"])


def test_evaluate_splits_protocol():
    X, y = _synthetic_curves()
    report = HybridPredictor(rf_params={"n_estimators": 30}, random_state=0).evaluate_splits(
        X, y, n_splits=8, test_size=10
    )
    assert set(report) == {"svr", "rf", "hyb"}
    for scores in report.values():
        assert set(scores) == {"mae", "mae_std", "r2", "r2_pooled"}
        assert scores["mae"] > 0 and scores["mae_std"] >= 0
    # The curves carry the final loss: the forest must find it (a broken split loop, or
    # one scoring the training rows, would not give this on held-out networks).
    assert report["rf"]["r2_pooled"] > 0.5 and report["hyb"]["r2_pooled"] > 0.5
    model = HybridPredictor(rf_params={"n_estimators": 30}, random_state=0).fit(X, y)
    parts = model.predict_components(X[:5])
    np.testing.assert_allclose(model.predict(X[:5]), (parts["svr"] + parts["rf"]) / 2)
    with pytest.raises(ValueError, match="test_size"):
        HybridPredictor().evaluate_splits(X[:10], y[:10], n_splits=2, test_size=10)


def test_tune_sets_parameters_deterministically():
    X, y = _synthetic_curves(n=40)
    first = HybridPredictor(random_state=1).tune(X, y, n_trials=3, cv=3)
    second = HybridPredictor(random_state=1).tune(X, y, n_trials=3, cv=3)
    assert first.svr_params == second.svr_params and first.rf_params == second.rf_params
    assert set(first.svr_params) == {"C", "epsilon", "gamma"}
    tuned = first.fit(X, y).predict(X)
    assert np.isfinite(tuned).all()
    # Tuning chose better than an SVR that can only predict a near-constant.
    from sklearn.model_selection import KFold, cross_val_score

    folds = KFold(3, shuffle=True, random_state=1)

    def cv_mae(predictor):
        return -cross_val_score(
            predictor._make_svr(), X, y, cv=folds, scoring="neg_mean_absolute_error"
        ).mean()

    flat = HybridPredictor(svr_params={"C": 1e-2, "epsilon": 1.0, "gamma": 1e-4}, random_state=1)
    assert cv_mae(first) < cv_mae(flat)


def test_non_finite_inputs_are_rejected():
    X, y = _synthetic_curves(n=10)
    y[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        HybridPredictor().fit(X, y)


def test_keep_sign_keeps_predictions_of_a_loss_positive_and_in_order():
    # A regressor extrapolates below 0 for an MSE; clipping at 0 tied such candidates.
    predicted = np.array([-2.0, -0.9, -0.3, 0.0, 0.15, 0.2, 0.7])
    kept = keep_sign(predicted, finals=[0.2, 0.3, 0.5])
    assert (kept > 0).all() and (np.diff(kept) > 0).all()
    assert (kept[:5] < 0.2).all() and kept[5:].tolist() == [0.2, 0.7]  # at or above m: as is
    assert kept[4] == pytest.approx(0.15, abs=0.01)  # just below m: nearly unchanged
    # A maximised objective (negated in the records): mirrored, never above 0.
    assert (keep_sign(-predicted, finals=[-0.2, -0.5]) == -kept).all()
    # Finals on both sides of 0: nothing is known about the objective's range.
    assert keep_sign(predicted, finals=[-0.1, 0.4]).tolist() == predicted.tolist()
    assert keep_sign(predicted, finals=[0.0, 0.4]).min() == 0.0
