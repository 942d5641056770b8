"""What a search keeps on disk: a real search of a small network, every checkpoint and weights
file it writes counted, and the files present sampled after every training step and trial."""

from pathlib import Path

import keras
import pytest

import kt_predictive.tuner
from kt_predictive import PredictiveSearch, SearchError
from kt_predictive.checkpoint import TRAINING_STATE_FILE

from tiny_problem import build_model, grouped, regression_data

# Also run by `make test`'s JAX leg (KERAS_BACKEND=jax): backend-independent code.
pytestmark = pytest.mark.jax

WEIGHTS_FILE = "checkpoint.weights.h5"
KEEP = 2
SEARCH = dict(
    initial_trials=6,
    max_iterations=6,
    top_k=2,
    full_steps=24,
    early_steps=8,
    window=4,
    final_window=4,
    refit_predictor=False,  # as the paper profile: top_k candidates keep early checkpoints
    tuning_trials=2,
    min_tuning_networks=2,
    report_splits=3,
    seed=7,
    keep_models=KEEP,
)


class Disk:
    """The search folder's checkpoint and weights files: bytes written per trial, and the
    most files (and bytes) present at once."""

    def __init__(self, root):
        self.root = root
        self.trial = None
        self.written = {}  # trial id -> [(file name, bytes)]
        self.peak = {TRAINING_STATE_FILE: 0, WEIGHTS_FILE: 0}
        self.peak_bytes = 0

    def __deepcopy__(self, memo):  # keras-tuner deep-copies the search's callbacks
        return self

    def wrote(self, path):
        self.written.setdefault(self.trial, []).append((path.name, path.stat().st_size))

    def sample(self):
        files = [p for name in self.peak for p in self.root.rglob(name)]
        for name in self.peak:
            self.peak[name] = max(self.peak[name], sum(p.name == name for p in files))
        self.peak_bytes = max(self.peak_bytes, sum(p.stat().st_size for p in files))


class SampleEveryStep(keras.callbacks.Callback):
    def __init__(self, disk):
        super().__init__()
        self.disk = disk

    def on_train_batch_end(self, batch, logs=None):
        self.disk.sample()  # after the tuner's own callback has written its checkpoint


class CountingSearch(PredictiveSearch):
    def __init__(self, *args, disk, **kwargs):
        self.disk = disk
        self.used_before_release = []
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        self.disk.trial = trial.trial_id
        super().run_trial(trial, *args, **kwargs)
        self.disk.sample()  # a fully trained network's weights, before it is settled

    def _save_final_weights(self, trial_id, model):
        super()._save_final_weights(trial_id, model)
        self.disk.wrote(Path(self._get_checkpoint_fname(trial_id)))

    def on_trial_end(self, trial):
        # What the AAE runner does: use each fully trained network before it may be deleted.
        if self.has_model(trial.trial_id):
            self.load_model(trial)
            self.used_before_release.append(trial.trial_id)
        super().on_trial_end(trial)
        self.disk.sample()  # after the oracle settled it and released what it no longer needs


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    directory = tmp_path_factory.mktemp("disk")
    disk = Disk(directory)
    save = kt_predictive.tuner.save_training_state

    def counted_save(path, *args, **kwargs):
        save(path, *args, **kwargs)
        disk.wrote(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kt_predictive.tuner, "save_training_state", counted_save)
        tuner = CountingSearch(
            build_model, directory=directory, project_name="disk", disk=disk, **grouped(SEARCH)
        )
        x, y = regression_data()
        tuner.search(x, y, batch_size=32, verbose=0, callbacks=[SampleEveryStep(disk)])
    return tuner, disk


def test_only_the_best_networks_keep_their_weights(search):
    tuner, _ = search
    oracle = tuner.oracle
    assert oracle.phase == "done"
    real = sorted((r for r in oracle.records() if r.is_real), key=lambda r: r.real_final)
    assert len(real) > KEEP + 1  # enough fully trained networks for some to be deleted
    kept = {r.trial_id for r in real[:KEEP]} | {oracle.best_finalized_trial().trial_id}
    on_disk = {r.trial_id for r in oracle.records() if tuner.has_model(r.trial_id)}
    assert on_disk == kept
    # Every fully trained network could be used (evaluated) before its weights went.
    assert sorted(tuner.used_before_release) == sorted(r.trial_id for r in real)
    assert tuner.get_best_models(KEEP)[0].count_params() > 0
    deleted = next(r for r in real if r.trial_id not in kept)
    with pytest.raises(SearchError, match="keep_models"):
        tuner.load_model(oracle.get_trial(deleted.trial_id))
    # Asking for more models than are kept, or trained, is one clear error, not fewer models.
    with pytest.raises(SearchError, match=rf"get_best_models\({KEEP + 1}\).*keep_models={KEEP}"):
        tuner.get_best_models(KEEP + 1)
    tuner.keep_models = None  # as if every network were kept: only the trained ones exist
    with pytest.raises(SearchError, match=rf"trained only {len(real)} networks fully"):
        tuner.get_best_models(len(real) + 1)
    tuner.keep_models = KEEP
    # No early checkpoint is left once the search is done.
    assert not list(tuner.disk.root.rglob(TRAINING_STATE_FILE))


def test_bytes_written_per_trial(search):
    tuner, disk = search
    window, early, full = SEARCH["window"], SEARCH["early_steps"], SEARCH["full_steps"]
    # Checkpoints (training states) at every early window and every window (checkpoint_every)
    # below the full budget; the final weights once.
    checkpoints_full = len(range(window, full, window))
    for record in tuner.oracle.records():
        written = disk.written.get(record.trial_id, [])
        states = [size for name, size in written if name == TRAINING_STATE_FILE]
        weights = [size for name, size in written if name == WEIGHTS_FILE]
        assert all(size > 0 for size in states + weights)
        if record.role == "initial":
            assert (len(states), len(weights)) == (checkpoints_full, 1)
        elif record.role == "explore":
            assert 1 <= len(states) <= early // window and not weights
        else:  # continued from its parent's checkpoint at the early budget
            assert (len(states), len(weights)) == (len(range(early + window, full, window)), 1)


def test_peak_files_and_bytes_are_bounded(search):
    tuner, disk = search
    top_k = SEARCH["top_k"]
    # Early checkpoints: the top_k candidates and the trial being trained.
    assert 1 <= disk.peak[TRAINING_STATE_FILE] <= top_k + 1
    # Weights: the kept networks, the best finalized one, and the one just trained.
    assert KEEP <= disk.peak[WEIGHTS_FILE] <= KEEP + 2
    sizes = [size for files in disk.written.values() for size in files]
    largest_state = max(size for name, size in sizes if name == TRAINING_STATE_FILE)
    largest_weights = max(size for name, size in sizes if name == WEIGHTS_FILE)
    bound = (top_k + 1) * largest_state + (KEEP + 2) * largest_weights
    assert disk.peak_bytes <= bound
    # Without the bound every fully trained network would have kept its weights.
    real = sum(r.is_real for r in tuner.oracle.records())
    assert real > disk.peak[WEIGHTS_FILE]


def test_keep_models_must_be_a_positive_count(tmp_path):
    settings = grouped(SEARCH)
    del settings["keep_models"]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SearchError, match="keep_models"):
            PredictiveSearch(
                build_model, directory=tmp_path, project_name=str(bad), keep_models=bad, **settings
            )
