"""The pre-rendered training set (rendering, cache) and the augmented batch pipeline."""

import dataclasses
import pickle

import keras
import numpy as np
import pytest
import trimesh
from scipy import ndimage

import aae.data.training_set
from aae.data.backgrounds import BackgroundPool
from aae.data.settings import TrainingSetConfig
from aae.data.training_set import (
    EPOCH_STEPS,
    AugmentedBatches,
    TrainingData,
    TrainingSet,
    build_training_set,
    training_set_path,
)

# The train_template.cfg camera scaled from 720x540 to 160x120, so a 10 cm box at 700 mm
# covers ~30 px.
SCALE = 160 / 720
K = ((1075.65 * SCALE, 0.0, 80.0), (0.0, 1073.90 * SCALE, 60.0), (0.0, 0.0, 1.0))
CONFIG = TrainingSetConfig(
    n_images=8, image_size=32, render_width=160, render_height=120, K=K, seed=0
)


def _box(rgb=(230, 160, 90)) -> trimesh.Trimesh:
    mesh = trimesh.creation.box((100.0, 80.0, 60.0))
    mesh.visual.vertex_colors = np.tile([*rgb, 255], (len(mesh.vertices), 1)).astype(np.uint8)
    return mesh


def _outer_rim(objects: np.ndarray) -> np.ndarray:
    """The pixels just outside each (N, H, W) object mask."""
    return np.stack([ndimage.binary_dilation(o) & ~o for o in objects])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def training_set(cache_dir) -> TrainingSet:
    # Keras (TensorFlow) is loaded in this process, so this also guards aae.data.render's
    # isolation of Mesa's LLVM from TensorFlow's: without it the first draw call segfaults.
    return build_training_set(_box(), CONFIG, cache_dir, progress=False)


def test_template_camera():
    assert TrainingSetConfig().K == ((1075.65, 0.0, 360.0), (0.0, 1073.90, 270.0), (0.0, 0.0, 1.0))
    assert (
        TrainingSetConfig().n_images,
        TrainingSetConfig().radius,
        TrainingSetConfig().pad_factor,
    ) == (20000, 700.0, 1.2)


def test_training_set_arrays(training_set):
    ts = training_set
    assert ts.inputs.shape == ts.targets.shape == (8, 32, 32, 3)
    assert ts.inputs.dtype == ts.targets.dtype == np.uint8
    assert ts.masks.shape == (8, 32, 32) and ts.masks.dtype == bool
    assert ts.rotations.shape == (8, 3, 3)
    for R in ts.rotations:
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(R) == pytest.approx(1.0)
    assert len({R.round(6).tobytes() for R in ts.rotations}) == 8
    # The object fills a good part of each crop; the renderer's background is black except
    # where anti-aliasing bleeds colour into pixels next to the object (depth 0 there).
    assert 0.2 < ts.masks.mean() < 0.85
    assert (ts.inputs[~ts.masks].max(axis=-1) > 0).all()
    coloured_background = ts.masks & ts.inputs.any(axis=-1)
    assert not (coloured_background & ~_outer_rim(~ts.masks)).any()


def test_inputs_are_offset_and_relit_crops_of_the_target_view(training_set):
    ts = training_set
    object_px_in = (~ts.masks).sum(axis=(1, 2))
    object_px_target = ts.targets.any(axis=-1).sum(axis=(1, 2))
    # Same scale (the same box): at most the offset cuts a little off the input's object.
    assert np.all(object_px_in <= object_px_target * 1.05)
    assert np.all(object_px_in >= object_px_target * 0.7)

    def centroid(mask):
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()])

    shifts = [
        np.abs(centroid(~m) - centroid(t.any(-1))).max()
        for m, t in zip(ts.masks, ts.targets, strict=True)
    ]
    assert max(shifts) > 1.0  # offsets of up to 0.2 w/h move the object in the input crop
    assert not np.array_equal(ts.inputs, ts.targets)


def test_without_offset_the_mask_is_the_target_background(tmp_path):
    config = dataclasses.replace(CONFIG, n_images=4, max_rel_offset=0.0)
    ts = build_training_set(_box(), config, tmp_path, progress=False)
    # Same pose, same box: the input's background is the target's black background, up to
    # the anti-aliased rim of the object.
    mismatch = ts.masks != ~ts.targets.any(axis=-1)
    assert mismatch.mean() < 0.05
    assert not (mismatch & ~_outer_rim(~ts.masks)).any()


def test_second_call_loads_the_cache(training_set, cache_dir, monkeypatch):
    path = training_set_path(_box(), CONFIG, cache_dir)
    assert path.is_file() and path.suffix == ".npz"
    assert not list(cache_dir.glob("*.tmp"))

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered although the cache holds this training set")

    monkeypatch.setattr(aae.data.training_set, "_render", no_rendering)
    mtime = path.stat().st_mtime_ns
    again = build_training_set(_box(), CONFIG, cache_dir, progress=False)
    assert path.stat().st_mtime_ns == mtime
    for name in ("inputs", "masks", "targets", "rotations"):
        np.testing.assert_array_equal(getattr(again, name), getattr(training_set, name))


def test_cache_name_depends_on_everything_that_changes_the_images(tmp_path):
    base = training_set_path(_box(), CONFIG, tmp_path)
    changed = [
        training_set_path(_box(), dataclasses.replace(CONFIG, seed=1), tmp_path),
        training_set_path(_box(), dataclasses.replace(CONFIG, pad_factor=1.3), tmp_path),
        training_set_path(
            _box(), dataclasses.replace(CONFIG, K=np.array(K) * [[1.01], [1], [1]]), tmp_path
        ),
        training_set_path(_box(rgb=(10, 20, 30)), CONFIG, tmp_path),
        training_set_path(trimesh.creation.box((100.0, 80.0, 61.0)), CONFIG, tmp_path),
    ]
    assert len({base, *changed}) == 6
    assert training_set_path(_box(), dataclasses.replace(CONFIG, K=np.array(K)), tmp_path) == base


def test_interrupted_write_leaves_no_cache_file(training_set, tmp_path, monkeypatch):
    monkeypatch.setattr(aae.data.training_set, "_render", lambda *args: training_set)

    def failing_savez(file, **arrays):
        file.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(aae.data.training_set.np, "savez", failing_savez)
    with pytest.raises(KeyboardInterrupt):
        build_training_set(_box(), CONFIG, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_invisible_object_is_a_clear_error(tmp_path):
    far_off = ((K[0][0], 0.0, -5000.0), K[1], K[2])  # principal point far outside the image
    with pytest.raises(ValueError, match="not visible"):
        build_training_set(_box(), dataclasses.replace(CONFIG, K=far_off), tmp_path, progress=False)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="n_images must be a positive integer"):
        TrainingSetConfig(n_images=0)
    with pytest.raises(ValueError, match="3x3 camera matrix"):
        TrainingSetConfig(K=(1.0, 2.0))


def _pool(n=16, size=32) -> BackgroundPool:
    # Flat crops in distinct colours no rendering of the box produces (green 7, blue 250).
    colours = np.stack([np.arange(n) * 10 + 5, np.full(n, 7), np.full(n, 250)], axis=1)
    return BackgroundPool(
        np.broadcast_to(colours[:, None, None, :], (n, size, size, 3)).astype(np.uint8)
    )


def test_batches_shapes_dtype_range_and_length(training_set):
    data = TrainingData(training_set, BackgroundPool.builtin(32, 16, seed=0))
    batches = data.batches(4, seed=0, workers=0)
    assert isinstance(batches, AugmentedBatches) and len(batches) == EPOCH_STEPS
    x, y = batches[1]
    assert x.shape == y.shape == (4, 32, 32, 3)
    # uint8: a batch crosses the worker pipe as bytes; the network scales it (aae.net.model).
    assert x.dtype == y.dtype == np.uint8
    assert x.max() > 127 and y.max() > 127
    short = data.batches(2, workers=0, steps_per_epoch=5)
    assert len(short) == 5
    with pytest.raises(IndexError):
        short[5]


def test_batches_are_seeded_by_seed_and_optimizer_step(training_set):
    data = TrainingData(training_set, BackgroundPool.builtin(32, 16, seed=0))
    batches = data.batches(4, seed=3, workers=0, steps_per_epoch=5)
    batches.on_epoch_end()  # Keras' call before its first epoch
    first = batches[0]
    assert batches.step_of(0) == 0 and batches.step_of(4) == 4
    again = data.batches(4, seed=3, workers=0, steps_per_epoch=5)
    again.on_epoch_end()
    np.testing.assert_array_equal(first[0], again[0][0])
    assert not np.array_equal(first[0], batches[1][0])
    other = data.batches(4, seed=4, workers=0, steps_per_epoch=5)
    other.on_epoch_end()
    assert not np.array_equal(first[0], other[0][0])
    restored = pickle.loads(pickle.dumps(batches))  # what a spawned worker receives
    np.testing.assert_array_equal(restored[0][0], first[0])
    batches.on_epoch_end()  # the second epoch: steps 5..9
    assert batches.step_of(0) == 5
    # A run resumed mid-epoch at step 7, or at the epoch boundary, sees the same batches.
    mid = data.batches(4, seed=3, workers=0, steps_per_epoch=5, initial_step=7)
    mid.on_epoch_end()
    np.testing.assert_array_equal(batches[2][0], mid[0][0])
    boundary = data.batches(4, seed=3, workers=0, steps_per_epoch=5, initial_epoch=1)
    boundary.on_epoch_end()
    np.testing.assert_array_equal(batches[0][0], boundary[0][0])


def test_a_resumed_fit_trains_on_the_batches_an_uninterrupted_one_would(training_set):
    """Interrupted at step 7 and resumed with initial_step=7, the batches trained on are
    those of steps 7..11 of the uninterrupted run (Keras' peeks excluded)."""
    data = TrainingData(training_set, BackgroundPool.builtin(32, 16, seed=0))

    class Seen(keras.layers.Layer):
        def __init__(self, log):
            super().__init__()
            self.log = log

        def call(self, x):
            self.log.append(float(np.asarray(keras.ops.sum(keras.ops.cast(x, "float32")))))
            return x

    class StopAt(keras.callbacks.Callback):
        def __init__(self, steps):
            super().__init__()
            self.steps, self.seen = steps, 0

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen >= self.steps:
                self.model.stop_training = True

    def train(steps, initial_step=0):
        log = []
        model = keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                Seen(log),
                keras.layers.Rescaling(1 / 255),
                keras.layers.Conv2D(3, 1),
            ]
        )
        model.compile("sgd", "mse", run_eagerly=True)
        batches = data.batches(2, seed=5, workers=0, steps_per_epoch=5, initial_step=initial_step)
        model.fit(batches, epochs=10, callbacks=[StopAt(steps)], verbose=0, shuffle=False)
        return log[-steps:]  # the trained steps, after Keras' shape peeks

    assert train(7) + train(5, initial_step=7) == train(12)


def test_worker_processes_are_the_default(training_set):
    batches = TrainingData(training_set, _pool()).batches(4, workers=None)
    assert (
        batches.use_multiprocessing
        and batches.workers == aae.data.training_set.default_workers() >= 1
    )
    assert not TrainingData(training_set, _pool()).batches(4, workers=0).use_multiprocessing


def test_background_is_pasted_where_the_mask_is_true(training_set, monkeypatch):
    monkeypatch.setattr(
        aae.data.training_set, "make_augmenter", lambda seed, size: lambda images: images
    )
    pool = _pool()
    x, y = TrainingData(training_set, pool).batches(8, seed=0, workers=0)[0]
    colours = {tuple(c) for c in pool.images[:, 0, 0]}
    used = set()
    for image, target in zip(x, y, strict=True):
        (i,) = [i for i in range(8) if np.array_equal(target, training_set.targets[i])]
        mask = training_set.masks[i]
        background = {tuple(c) for c in image[mask]}
        assert len(background) == 1 and background <= colours  # one crop per image
        used |= background
        np.testing.assert_array_equal(image[~mask], training_set.inputs[i][~mask])
    assert len(used) == 8  # distinct crops, drawn without replacement


def test_augmentation_changes_the_composited_inputs(training_set, monkeypatch):
    plain_x, plain_y = TrainingData(training_set, _pool()).batches(8, seed=0, workers=0)[0]
    monkeypatch.setattr(
        aae.data.training_set, "make_augmenter", lambda seed, size: lambda images: images
    )
    composite_x, composite_y = TrainingData(training_set, _pool()).batches(8, seed=0, workers=0)[0]
    np.testing.assert_array_equal(plain_y, composite_y)  # targets are never augmented
    changed = [not np.array_equal(a, b) for a, b in zip(plain_x, composite_x, strict=True)]
    assert sum(changed) >= 6


def test_batch_errors(training_set):
    with pytest.raises(ValueError, match="batch_size 16 exceeds the 8 training images"):
        TrainingData(training_set, _pool()).batches(16, workers=0)
    with pytest.raises(ValueError, match="exceeds the 4 background crops"):
        TrainingData(training_set, _pool(n=4)).batches(8, workers=0)
    with pytest.raises(ValueError, match="size=32"):
        TrainingData(training_set, _pool(size=16))


_HAND_OVER_SCRIPT = """
import multiprocessing, sys
from multiprocessing import resource_tracker
import numpy as np
import aae.data.training_set as training_set
from aae.data.backgrounds import BackgroundPool

training_set._SHARED_MEMORY_DIR = sys.argv[1]
rng = np.random.default_rng(0)
images = training_set.TrainingSet(
    rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
    rng.random((8, 32, 32)) < 0.5,
    rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
    np.broadcast_to(np.eye(3), (8, 3, 3)).copy(),
)
batches = training_set.TrainingData(images, BackgroundPool.builtin(32, 16, seed=0)).batches(
    4, seed=5, workers=0
)

def batch_in_a_worker(index):
    batch = batches[index]
    return type(batch[0]).__name__, batch

if __name__ == "__main__":
    with resource_tracker._resource_tracker._lock:
        pool = multiprocessing.get_context("fork").Pool(1)
    try:
        kind, received = pool.apply_async(batch_in_a_worker, (3,)).get(timeout=240)
    finally:
        pool.terminate()
        pool.join()
    assert kind == "_SharedBatchArray", kind  # what the worker pickled
    for got, expected in zip(received, batches[3], strict=True):
        assert type(got) is np.ndarray and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)
    print("received")
"""


def test_worker_batches_arrive_through_shared_memory_unchanged(tmp_path):
    # A worker process hands its batch over through a file in /dev/shm
    # (aae.data.training_set._SharedBatchArray): the training process gets the same plain
    # uint8 arrays as an in-process batch, and no file is left behind. The worker is forked
    # while the parent holds multiprocessing's resource-tracker lock, as Keras' result thread
    # may when Keras forks the next epoch's pool: a worker that needs that lock (SharedMemory
    # did) never gets its batch out. In a fresh interpreter: forked from pytest's process
    # after hundreds of tests, the worker hung in one full run (cause not found).
    import subprocess
    import sys

    script = tmp_path / "hand_over.py"
    script.write_text(_HAND_OVER_SCRIPT)
    shared = tmp_path / "shm"  # a folder of its own: other processes' batches cross /dev/shm
    shared.mkdir()
    result = subprocess.run(
        [sys.executable, str(script), str(shared)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "received" in result.stdout, result.stderr[-3000:]
    assert list(shared.iterdir()) == []  # the training process unlinked the file
