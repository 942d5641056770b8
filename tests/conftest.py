"""Test-wide settings: chosen before any test imports Keras or pyrender."""

import gc
import os

import pytest

# Keras reads its backend and pyrender its OpenGL platform at import time.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Roughly the seconds each slow file takes on the TensorFlow leg (pytest --durations); the
# files not named take a few seconds each. Only their order matters.
SLOW_FILES = {
    "test_runner.py": 300,
    "test_examples.py": 250,
    "test_search_processes.py": 120,
    "test_pose_end_to_end.py": 100,
    "test_robustness.py": 90,
    "test_cli.py": 80,
}


def pytest_collection_modifyitems(config, items):
    """Runs the slowest files first, each file's tests in their written order.

    make test hands whole files to two pytest-xdist processes in collection order (``--dist
    loadfile --no-loadscope-reorder``), each next file to the first process that is free:
    with the longest files first, both processes finish at about the same time instead of
    one starting a long pipeline when the other has run out of files.
    """
    items.sort(key=lambda item: -SLOW_FILES.get(item.path.name, 0))


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

    from tiny_problem import SEARCH, build_model, regression_data

    directory = tmp_path_factory.mktemp("tiny_search")
    tuner = PredictiveSearch(build_model, directory=directory, project_name="tiny", **SEARCH)
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    return tuner, directory
