"""Test-wide settings: chosen before any test imports Keras or pyrender."""

import gc
import os

import pytest

# Keras reads its backend and pyrender its OpenGL platform at import time.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_finish(session):
    """Keeps the objects alive after collection out of every later garbage collection.

    keras-tuner collects garbage twice before every trial (``keras.backend.clear_session``
    and its own ``gc.collect()``), and a full collection walks every object of the process:
    after the test modules imported TensorFlow, Keras, scikit-learn and matplotlib, over half
    a million, ~0.4 s a collection on the shared 2-core machine, ~17% of a full run. The
    modules and the collected tests live until the session ends anyway, so frozen they are
    never scanned again; what the tests create stays collectable as before.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory):
    """(tuner, directory) of tests/tiny_problem.py's search run to the end, once a session.

    Read it, do not change it (tests that damage or extend a search copy the directory):
    test_search, test_report and test_robustness all check the same finished search.
    """
    from kt_predictive import PredictiveSearch

    from tiny_problem import SEARCH, build_model, grouped, regression_data

    directory = tmp_path_factory.mktemp("tiny_search")
    tuner = PredictiveSearch(
        build_model, directory=directory, project_name="tiny", **grouped(SEARCH)
    )
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    return tuner, directory
