"""AAE training data: the pre-rendered (input, target) set and the augmented batch pipeline.

`build_training_set` renders N pairs once per (mesh, config) and caches them on disk, like
the original's `Dataset.get_training_images`; `TrainingData.batches` turns them into
augmented Keras batches: random training pairs, random backgrounds pasted where the object
is absent, the original imgaug chain, uint8 in [0, 255] (the network scales them to [0, 1]
itself, so a batch travels from a worker process as bytes, not as 4x larger float32).
Batches are computed in worker processes, seeded per (seed, epoch, batch) so the stream does
not depend on scheduling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import trimesh
from scipy.spatial.transform import Rotation
from tqdm.auto import tqdm

from aae.data.augment import make_augmenter
from aae.data.backgrounds import BackgroundPool
from aae.data.crop import bbox_from_mask, random_offset, square_crop
from aae.data.render import Light, Renderer
from aae.data.settings import TrainingSetConfig, _is_int_at_least
from aae.errors import AAEError

#: Bumped whenever the rendering procedure changes, so old caches are not reused.
CACHE_FORMAT = "aae-training-set-v1"

#: Default batches per Keras epoch. Batches are drawn at random (the original has no epochs),
#: so an epoch only decides how often Keras stops and restarts the worker processes; with
#: n_images // batch_size a small training set restarted them every few steps.
EPOCH_STEPS = 1000


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """N pre-rendered training pairs of one object.

    Attributes:
        inputs: (N, S, S, 3) uint8, random-light renderings, offset crops, black background.
        masks: (N, S, S) bool, True where `inputs` shows background (cropped depth == 0).
        targets: (N, S, S, 3) uint8, fixed-light renderings, tight crops (the reconstruction
            target).
        rotations: (N, 3, 3) float64 model-to-camera rotations of the pairs.
    """

    inputs: np.ndarray
    masks: np.ndarray
    targets: np.ndarray
    rotations: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.inputs)
        expected = {
            "inputs": (np.uint8, 4),
            "masks": (np.bool_, 3),
            "targets": (np.uint8, 4),
            "rotations": (np.floating, 3),
        }
        for name, (dtype, ndim) in expected.items():
            array = getattr(self, name)
            if (
                not isinstance(array, np.ndarray)
                or not np.issubdtype(array.dtype, dtype)
                or array.ndim != ndim
                or len(array) != n
            ):
                raise AAEError(
                    f"TrainingSet.{name} must be a {np.dtype(dtype).name} array with {ndim} "
                    f"dimensions and {n} entries, got "
                    f"{getattr(array, 'dtype', type(array).__name__)} "
                    f"{getattr(array, 'shape', '')}; build it with build_training_set()."
                )
        if (
            n == 0
            or self.inputs.shape[1:] != self.targets.shape[1:]
            or self.inputs.shape[1:3] != self.masks.shape[1:]
        ):
            raise AAEError(
                "TrainingSet needs at least one pair and matching shapes (N, S, S, 3) for inputs "
                f"and targets and (N, S, S) for masks, got {self.inputs.shape}, "
                f"{self.targets.shape}, {self.masks.shape}."
            )

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def image_size(self) -> int:
        """Side length S of the square crops."""
        return self.inputs.shape[1]


def rendering_digest(mesh: trimesh.Trimesh, *settings: object) -> str:
    """A hash of everything a rendering of ``mesh`` depends on: the arrays the renderer draws
    and the given settings (dataclasses or plain values), for naming cache files."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    for item in settings:
        plain = dataclasses.asdict(item) if dataclasses.is_dataclass(item) else item
        digest.update(json.dumps(plain, sort_keys=True).encode())
    for array in _mesh_arrays(mesh):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:20]


def training_set_path(
    mesh: trimesh.Trimesh, config: TrainingSetConfig, cache_dir: str | os.PathLike
) -> Path:
    """The cache file of `build_training_set`: a hash of the mesh and every config field."""
    return Path(cache_dir) / f"training_set_{rendering_digest(mesh, config)}.npz"


def build_training_set(
    mesh: trimesh.Trimesh,
    config: TrainingSetConfig,
    cache_dir: str | os.PathLike,
    progress: bool = True,
) -> TrainingSet:
    """Render (or load from the cache) the training pairs of `mesh`, like the original.

    For each pair: a rotation uniform on SO(3), the object at t = (0, 0, radius); the input
    is rendered with a random light and cropped around its depth box shifted by a random
    offset, the target with the fixed light and a tight crop; both square crops are
    `pad_factor` times the box and resized (nearest) to `image_size`. The result is cached
    in `cache_dir` under a hash of the mesh and `config` (see `training_set_path`); a later
    call with the same inputs loads the file instead of rendering.
    """
    path = training_set_path(mesh, config, cache_dir)
    if path.is_file():
        return _load(path, config)
    training_set = _render(mesh, config, progress)
    _save_atomically(path, training_set, config)
    return training_set


def _mesh_arrays(mesh: trimesh.Trimesh) -> list[np.ndarray]:
    """The arrays the renderer draws: geometry, normals and colours (texture or vertex)."""
    arrays = [
        np.asarray(mesh.vertices, dtype=np.float64),
        np.asarray(mesh.faces, dtype=np.int64),
        np.asarray(mesh.vertex_normals, dtype=np.float64),
    ]
    visual = mesh.visual
    image = getattr(getattr(visual, "material", None), "image", None)
    if visual.kind == "texture" and visual.uv is not None and image is not None:
        arrays += [np.asarray(visual.uv, dtype=np.float64), np.asarray(image)]
    elif visual.kind == "texture":
        arrays.append(np.asarray(visual.to_color().vertex_colors))
    elif visual.kind is not None:
        arrays.append(np.asarray(visual.vertex_colors))
    return arrays


def _render(mesh: trimesh.Trimesh, config: TrainingSetConfig, progress: bool) -> TrainingSet:
    n, size = config.n_images, config.image_size
    inputs = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    targets = np.empty((n, size, size, 3), dtype=np.uint8)
    rotations = np.empty((n, 3, 3), dtype=np.float64)
    rng = np.random.default_rng(config.seed)
    K = config.camera_matrix
    t = np.array([0.0, 0.0, config.radius])
    with Renderer(config.render_width, config.render_height) as renderer:
        for i in tqdm(range(n), desc="Rendering AAE training set", disable=not progress):
            R = Rotation.random(rng=rng).as_matrix()
            rgb_x, depth_x = renderer.render(mesh, R, t, K, Light.random(rng))
            rgb_y, depth_y = renderer.render(mesh, R, t, K, Light.fixed())
            box_x, box_y = _object_box(depth_x, config), _object_box(depth_y, config)
            offset = random_offset(box_x, config.max_rel_offset, rng)
            crop = {"pad_factor": config.pad_factor, "size": size, "interpolation": "nearest"}
            inputs[i] = square_crop(rgb_x, box_x, offset=offset, **crop)
            masks[i] = square_crop(depth_x, box_x, offset=offset, **crop) == 0
            targets[i] = square_crop(rgb_y, box_y, **crop)
            rotations[i] = R
    return TrainingSet(inputs, masks, targets, rotations)


def _object_box(depth: np.ndarray, config: TrainingSetConfig) -> tuple[int, int, int, int]:
    mask = depth > 0
    if not mask.any():
        raise AAEError(
            f"The object is not visible in a {config.render_width}x{config.render_height} "
            f"rendering at {config.radius} mm: is the mesh in millimetres (load_mesh(..., "
            "units='m') for metres) and does K put the principal point inside the image?"
        )
    return bbox_from_mask(mask)


def _save_atomically(path: Path, training_set: TrainingSet, config: TrainingSetConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename: os.replace is atomic, so a killed run leaves at
    # worst a stray .tmp file, never a truncated cache that a later run would load.
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                inputs=training_set.inputs,
                masks=training_set.masks,
                targets=training_set.targets,
                rotations=training_set.rotations,
                config=np.array(json.dumps(dataclasses.asdict(config), sort_keys=True)),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, config: TrainingSetConfig) -> TrainingSet:
    with np.load(path) as data:
        training_set = TrainingSet(
            data["inputs"], data["masks"], data["targets"], data["rotations"]
        )
    if len(training_set) != config.n_images or training_set.image_size != config.image_size:
        raise AAEError(
            f"The cached training set {path} holds {len(training_set)} images of "
            f"{training_set.image_size} px, not the {config.n_images} of {config.image_size} px "
            "its name promises; delete the file to render it again."
        )
    return training_set


@dataclass(frozen=True, eq=False)
class TrainingData:
    """A `TrainingSet` and the `BackgroundPool` pasted behind its inputs."""

    training_set: TrainingSet
    backgrounds: BackgroundPool

    def __post_init__(self) -> None:
        _check_same_size(self.training_set, self.backgrounds)

    def batches(
        self,
        batch_size: int,
        seed: int = 0,
        workers: int | None = None,
        steps_per_epoch: int | None = None,
        initial_epoch: int = 0,
        initial_step: int = 0,
    ) -> AugmentedBatches:
        """An `AugmentedBatches` Keras dataset over this data; see its docstring."""
        return AugmentedBatches(
            self.training_set,
            self.backgrounds,
            batch_size,
            seed=seed,
            workers=workers,
            steps_per_epoch=steps_per_epoch,
            initial_epoch=initial_epoch,
            initial_step=initial_step,
        )


def _check_same_size(training_set: TrainingSet, backgrounds: BackgroundPool) -> None:
    if backgrounds.size != training_set.image_size:
        raise AAEError(
            f"Background crops are {backgrounds.size} px but training images are "
            f"{training_set.image_size} px; build the BackgroundPool with "
            f"size={training_set.image_size}."
        )


def default_workers() -> int:
    """Worker processes for augmentation: all cores but one for the training loop, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class AugmentedBatches(keras.utils.PyDataset):
    """Augmented AAE batches (input, target), uint8 in [0, 255], shapes (B, S, S, 3).

    Per batch, like the original `Dataset.batch`: `batch_size` distinct training pairs and
    `batch_size` distinct background crops are drawn, the background is pasted where the
    input's mask is True and the imgaug chain of `aae.data.augment` is applied to the inputs.
    Both stay uint8: `aae.net.model.build_aae` networks take [0, 255] images and their loss
    scales the targets by 1/255, and worker processes hand them over through shared memory.

    Each batch is drawn with a generator seeded by (seed, its optimizer step), so the stream
    is reproducible whatever the worker scheduling, and a run resumed at step s (``fit``'s
    ``initial_epoch``, or ``initial_step`` for a resume in the middle of an epoch) trains on
    the batches an uninterrupted run would have seen from step s on. `epoch` starts at
    `initial_epoch` and counts `on_epoch_end` calls, which happen in the main process
    between epochs; Keras' `fit` makes one before its first epoch (after peeking at two
    batches to learn their shape), so the training epoch j of a fit (0-based) runs while
    `epoch == initial_epoch + j + 1`, and its batch i is optimizer step
    ``initial_step + (initial_epoch + j) * steps_per_epoch + i``.

    Args:
        training_set, backgrounds: the data; image sizes must match.
        batch_size: images per batch (the MB hyperparameter).
        seed: seed of the batch stream.
        workers: worker processes (`default_workers()` if None); 0 computes batches in the
            calling process. Forked workers share the arrays; spawned ones get a pickle.
        steps_per_epoch: batches per Keras epoch; default EPOCH_STEPS.
        initial_epoch: first value of `epoch`; pass `fit`'s `initial_epoch` so a resumed
            run continues the stream instead of replaying the first epochs.
        initial_step: optimizer steps trained before this fit (a resume mid-epoch).
        max_queue_size: batches prepared ahead of the training loop.
    """

    def __init__(
        self,
        training_set: TrainingSet,
        backgrounds: BackgroundPool,
        batch_size: int,
        seed: int = 0,
        workers: int | None = None,
        steps_per_epoch: int | None = None,
        initial_epoch: int = 0,
        initial_step: int = 0,
        max_queue_size: int = 10,
    ) -> None:
        workers = default_workers() if workers is None else workers
        if not _is_int_at_least(workers, 0):
            raise AAEError(
                f"workers must be an integer >= 0 (0: in the calling process), got {workers!r}."
            )
        super().__init__(
            workers=max(workers, 1), use_multiprocessing=workers > 0, max_queue_size=max_queue_size
        )
        if not _is_int_at_least(batch_size, 1):
            raise AAEError(f"batch_size must be a positive integer, got {batch_size!r}.")
        # Drawn without replacement, as in the original: a batch needs that many of each.
        for what, available in (
            ("training images", len(training_set)),
            ("background crops", len(backgrounds)),
        ):
            if batch_size > available:
                raise AAEError(
                    f"batch_size {batch_size} exceeds the {available} {what}; a batch draws "
                    f"distinct {what}, so provide at least {batch_size} "
                    "(TrainingSetConfig.n_images "
                    "or the BackgroundPool's n) or use a smaller batch."
                )
        _check_same_size(training_set, backgrounds)
        for name, value in (
            ("seed", seed),
            ("initial_epoch", initial_epoch),
            ("initial_step", initial_step),
        ):
            if not _is_int_at_least(value, 0):
                raise AAEError(f"{name} must be an integer >= 0, got {value!r}.")
        steps = EPOCH_STEPS if steps_per_epoch is None else steps_per_epoch
        if not _is_int_at_least(steps, 1):
            raise AAEError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}.")
        self.training_set = training_set
        self.backgrounds = backgrounds
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.steps_per_epoch = int(steps)
        self.epoch = int(initial_epoch)
        self.initial_step = int(initial_step)

    def step_of(self, index: int) -> int | None:
        """The optimizer step batch ``index`` of the current epoch trains, or None for the
        batches Keras peeks at before its first epoch."""
        if self.epoch == 0:
            return None
        return self.initial_step + (self.epoch - 1) * self.steps_per_epoch + int(index)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(
                f"batch index {index} out of range for {self.steps_per_epoch} steps per epoch"
            )
        step = self.step_of(index)
        # Peeked batches only give Keras their shape; they get a stream of their own.
        rng = np.random.default_rng(
            (self.seed, 0, int(index)) if step is None else (self.seed, 1, step)
        )
        data = self.training_set
        picks = rng.choice(len(data), self.batch_size, replace=False)
        backgrounds = self.backgrounds.sample(
            rng.choice(len(self.backgrounds), self.batch_size, replace=False)
        )
        # The background where the mask is True: the same pixels as boolean indexing
        # (inputs[masks] = backgrounds[masks]) at a fifth of its CPU time at 128², where the
        # background covers three quarters of a crop (bench/RESULTS.md, aae-pipeline).
        inputs = np.where(data.masks[picks][..., None], backgrounds, data.inputs[picks])
        inputs = make_augmenter(int(rng.integers(2**31)), data.image_size)(images=inputs)
        targets = data.targets[picks]
        if multiprocessing.parent_process() is not None:
            # In a worker process: hand the batch over through shared memory (see
            # _SharedBatchArray); in the calling process a batch is returned as it is.
            return _SharedBatchArray.wrap(inputs), _SharedBatchArray.wrap(targets)
        return inputs, targets

    def on_epoch_end(self) -> None:
        """Advance the epoch that seeds the next epoch's batches."""
        # Keras calls this in the main process after stopping the epoch's workers and before
        # the next epoch's worker pool is created from this object, so workers see the
        # update. (on_epoch_begin would race with that pool's creation.)
        self.epoch += 1


class _SharedBatchArray(np.ndarray):
    """A batch array that a worker process hands over through a file in shared memory.

    Keras' worker pool pickles every batch through a pipe, and the training process pays
    for receiving and unpickling the bytes: at 128² that was the training process's largest
    cost per image, and one process must receive every batch the GPU consumes. Pickling this
    array (in the worker) writes it to a new file in /dev/shm (memory, not disk) and sends
    only the file's path; unpickling (in the training process) reads it into a plain ndarray
    and unlinks the file. One copy on each side instead of the pipe. Keras' pool hands every
    result it computed to its result thread, which unpickles (and so unlinks) it even when
    training stops mid-epoch; only a killed training process leaves files behind.

    Plain files rather than `multiprocessing.shared_memory`: SharedMemory registers every
    block with the resource tracker under a lock, and a process forked while another thread
    holds that lock never gets it back (Keras forks a new worker pool every epoch while its
    result thread may still be receiving the last epoch's batches): a test hung in CI so.
    """

    @classmethod
    def wrap(cls, array: np.ndarray) -> _SharedBatchArray:
        return np.ascontiguousarray(array).view(cls)

    def __reduce_ex__(self, protocol):
        # ndarray defines __reduce_ex__ itself (protocol 5 buffers): override that, not
        # only __reduce__.
        return self.__reduce__()

    def __reduce__(self):
        fd, path = tempfile.mkstemp(prefix="aae-batch-", dir=_SHARED_MEMORY_DIR)
        try:
            with os.fdopen(fd, "wb") as file:
                self.view(np.ndarray).tofile(file)
        except BaseException:
            os.unlink(path)
            raise
        return _receive_shared_batch, (path, self.shape, self.dtype.str)


#: Where worker processes leave batches for the training process: memory-backed on Linux.
_SHARED_MEMORY_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def _receive_shared_batch(path: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Unpickles a _SharedBatchArray: the file's array, after which the file is unlinked."""
    try:
        return np.fromfile(path, dtype=np.dtype(dtype)).reshape(shape)
    finally:
        os.unlink(path)
