"""Test-wide settings: chosen before any test imports Keras or pyrender."""

import gc
import os

import pytest

# Keras reads its backend and pyrender its OpenGL platform at import time.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The seconds each slow file took in make test's TensorFlow leg on the shared 2-core machine
# (pytest --durations, load ~20, so several times its time on quiet cores); the files not
# named took under 35 s each. Only the order matters.
SLOW_FILES = {
    "test_examples.py": 905,
    "test_runner.py": 700,
    "test_search_processes.py": 475,
    "test_robustness.py": 360,
    "test_search_lock.py": 280,
    "test_search_disk.py": 255,
    "test_pose_end_to_end.py": 175,
    "test_cli.py": 170,
    "test_initial_screen.py": 90,
    "test_oracle_protocol.py": 90,
    "test_report.py": 75,
    "test_search.py": 75,
    "test_training_resume.py": 57,
    "test_model.py": 55,
    "test_data.py": 50,
    "test_hypermodel.py": 45,
    "test_render.py": 36,
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

    from tiny_problem import SEARCH, build_model, grouped, regression_data

    directory = tmp_path_factory.mktemp("tiny_search")
    tuner = PredictiveSearch(
        build_model, directory=directory, project_name="tiny", **grouped(SEARCH)
    )
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    return tuner, directory
