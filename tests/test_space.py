"""Value grids of keras-tuner hyperparameters."""

import keras_tuner
import pytest
from keras_tuner import errors

from kt_predictive.space import value_grids


def test_grids_of_every_supported_type():
    hp = keras_tuner.HyperParameters()
    hp.Choice("opt", ["adam", "sgd"])
    hp.Choice("units", [32, 64, 128])
    hp.Boolean("bn")
    hp.Fixed("depth", 4)
    hp.Int("layers", 1, 3)  # linear Int: step 1 by keras-tuner's definition
    hp.Float("lr", 2e-5, 2e-2, step=10, sampling="log")
    grids = {g.name: g for g in value_grids(hp)}
    assert grids["opt"].values == ("adam", "sgd") and grids["opt"].kind == "categorical"
    assert grids["units"].values == (32, 64, 128) and not grids["units"].log_scale
    assert grids["bn"].values == (False, True) and grids["bn"].kind == "boolean"
    assert grids["depth"].values == (4,)
    assert grids["layers"].values == (1, 2, 3)
    assert len(grids["lr"]) == 4 and grids["lr"].log_scale
    assert grids["lr"].index(0.002) == 2  # float grid values match within rounding


def test_float_without_step_names_the_fix():
    hp = keras_tuner.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    with pytest.raises(
        errors.FatalValueError, match=r"'lr' is a Float without a step.*step=\.\.\."
    ):
        value_grids(hp)


def test_log_int_without_step_is_rejected():
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 16, 512, sampling="log")
    with pytest.raises(errors.FatalValueError, match="without a step"):
        value_grids(hp)


def test_empty_space_is_rejected():
    with pytest.raises(errors.FatalValueError, match="search space is empty"):
        value_grids(keras_tuner.HyperParameters())
