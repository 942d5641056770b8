"""The codebook: latent codes of rendered views with known rotations, and 6D pose from them.

As in the original AAE: viewpoints on an icosphere (2562, i.e. 4 subdivisions) times in-plane
rotations (36) give 92,232 rotations; each is rendered with the fixed light at the training
camera and distance, cropped tightly (x pad_factor), encoded and L2-normalised. A test crop is
encoded and normalised too; cosine similarity with every code (one matrix product) picks the
rotation. Translation follows from the 2D box: the distance scales with the ratio of the
codebook view's box diagonal to the test box diagonal and the ratio of focal lengths, and the
box centre's offset from the principal point gives x and y; the rotation is then corrected
for the perspective of an object off the optical axis.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import trimesh
from tqdm.auto import tqdm

from aae.data.crop import bbox_from_mask, square_crop
from aae.data.render import Light, Renderer
from aae.data.settings import TrainingSetConfig
from aae.data.training_set import rendering_digest
from aae.errors import AAEError, MissingFileError

# Vertices of an icosphere after k subdivisions: 10 * 4**k + 2.
ICOSPHERE_VIEWS = {10 * 4**k + 2: k for k in range(8)}
CODEBOOK_FORMAT = 1


def view_rotations(n_views: int = 2562, n_inplane: int = 36) -> np.ndarray:
    """Model-to-camera rotations looking at the object from icosphere vertices.

    For every vertex p (the camera position in the model frame) the camera looks at the
    model's origin with the model's z axis as "up" where possible, then is rotated about its
    optical axis by ``n_inplane`` equal steps. Returns ``(n_views * n_inplane, 3, 3)``.
    """
    if n_views not in ICOSPHERE_VIEWS:
        raise AAEError(
            f"n_views must be the vertex count of a subdivided icosphere, one of "
            f"{sorted(ICOSPHERE_VIEWS)} (the original uses 2562); got {n_views}"
        )
    if n_inplane < 1:
        raise AAEError(f"n_inplane must be >= 1 (the original uses 36), got {n_inplane}")
    vertices = trimesh.creation.icosphere(subdivisions=ICOSPHERE_VIEWS[n_views]).vertices
    views = []
    for position in vertices:
        forward = -position / np.linalg.norm(position)  # camera z: towards the object
        up = np.array([0.0, 0.0, 1.0])
        if abs(forward @ up) > 0.999:  # looking along the model's z axis
            up = np.array([0.0, 1.0, 0.0])
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        views.append(np.stack([right, down, forward]))  # rows: camera axes in the model frame
    angles = 2 * np.pi * np.arange(n_inplane) / n_inplane
    inplane = np.array(
        [[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]] for a in angles]
    )
    return np.einsum("iab,vbc->viac", inplane, np.array(views)).reshape(-1, 3, 3)


def encoder_fingerprint(encoder: keras.Model) -> str:
    """A hash of an encoder's architecture and weights, to tie a codebook to its network."""
    digest = hashlib.sha256()
    for weight in encoder.weights:
        value = weight.numpy()
        digest.update(str(value.shape).encode())
        digest.update(np.ascontiguousarray(value, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class CodebookViews:
    """The rendered views of a codebook, before any network: the same for every encoder.

    Rendering dominates the cost of a codebook (92,232 views at the paper's size) while the
    encoding is one batched forward pass, so a run that compares many networks renders the
    views once and encodes them for each.

    Attributes:
        crops: (N, S, S, 3) uint8 tight crops (x pad_factor) rendered with the fixed light.
        rotations: (N, 3, 3) model-to-camera rotations.
        boxes: (N, 4) (x, y, w, h) object boxes in the rendering.
        camera: The rendering settings (training camera, distance, crop, image size).
    """

    crops: np.ndarray
    rotations: np.ndarray
    boxes: np.ndarray
    camera: TrainingSetConfig

    @classmethod
    def render(
        cls,
        mesh: trimesh.Trimesh,
        camera: TrainingSetConfig,
        n_views: int = 2562,
        n_inplane: int = 36,
        progress: bool = True,
    ) -> CodebookViews:
        """Renders every view of ``mesh`` at the training camera and distance."""
        rotations = view_rotations(n_views, n_inplane)
        K = camera.camera_matrix
        t = np.array([0.0, 0.0, camera.radius])
        crops = np.empty((len(rotations), camera.image_size, camera.image_size, 3), np.uint8)
        boxes = np.empty((len(rotations), 4), np.float32)
        with Renderer(camera.render_width, camera.render_height) as renderer:
            for i, R in enumerate(tqdm(rotations, desc="Codebook views", disable=not progress)):
                rgb, depth = renderer.render(mesh, R, t, K, Light.fixed())
                boxes[i] = box = bbox_from_mask(depth > 0)
                crops[i] = square_crop(rgb, box, camera.pad_factor, camera.image_size)
        return cls(crops, rotations.astype(np.float32), boxes, camera)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the views to ``path`` (.npz) atomically."""
        from kt_predictive.storage import atomic_write

        path = Path(path)
        meta = json.dumps({"camera": _camera_dict(self.camera)})
        atomic_write(
            path,
            lambda file: np.savez(
                file,
                crops=self.crops,
                rotations=self.rotations,
                boxes=self.boxes,
                meta=np.array(meta),
            ),
        )
        return path

    @classmethod
    def cached(
        cls,
        cache_dir: str | os.PathLike,
        mesh: trimesh.Trimesh,
        camera: TrainingSetConfig,
        n_views: int,
        n_inplane: int,
        progress: bool = True,
    ) -> CodebookViews:
        """The views from ``cache_dir``, rendered and stored there the first time."""
        path = (
            Path(cache_dir)
            / f"codebook_views_{rendering_digest(mesh, camera, n_views, n_inplane)}.npz"
        )
        if path.is_file():
            return cls.load(path)
        views = cls.render(mesh, camera, n_views, n_inplane, progress)
        views.save(path)
        return views

    @classmethod
    def load(cls, path: str | os.PathLike) -> CodebookViews:
        """Reads views written by :meth:`save`."""
        with np.load(path) as data:
            camera = _camera_from_dict(json.loads(str(data["meta"]))["camera"])
            return cls(data["crops"], data["rotations"], data["boxes"], camera)


@dataclass(frozen=True, eq=False)
class Codebook:
    """Normalised latent codes of rendered views, their rotations and 2D boxes.

    Attributes:
        codes: (N, latent_dim) float32, L2-normalised.
        rotations: (N, 3, 3) model-to-camera rotations of the views.
        boxes: (N, 4) (x, y, w, h) of each view's object box in the codebook rendering.
        camera: the rendering settings (a TrainingSetConfig: K, render size, radius,
            pad_factor, image_size) the views were rendered with.
        fingerprint: :func:`encoder_fingerprint` of the encoder that made the codes.
    """

    codes: np.ndarray
    rotations: np.ndarray
    boxes: np.ndarray
    camera: TrainingSetConfig
    fingerprint: str

    @classmethod
    def create(
        cls,
        encoder: keras.Model,
        mesh: trimesh.Trimesh,
        camera: TrainingSetConfig,
        n_views: int = 2562,
        n_inplane: int = 36,
        batch_size: int = 256,
        progress: bool = True,
    ) -> Codebook:
        """Renders every view of ``mesh`` with the fixed light and encodes it."""
        _check_encoder(encoder, camera.image_size)
        return cls.from_views(
            encoder, CodebookViews.render(mesh, camera, n_views, n_inplane, progress), batch_size
        )

    @classmethod
    def from_views(
        cls, encoder: keras.Model, views: CodebookViews, batch_size: int = 256
    ) -> Codebook:
        """Encodes rendered views in batches and L2-normalises the codes."""
        _check_encoder(encoder, views.camera.image_size)
        codes = _normalise(_encode(encoder, views.crops, batch_size))
        return cls(codes, views.rotations, views.boxes, views.camera, encoder_fingerprint(encoder))

    def __len__(self) -> int:
        return len(self.codes)

    def nearest(self, codes: np.ndarray, top_k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Indices (N, top_k) of the most similar views, best first, and their cosine scores."""
        similarity = _normalise(np.asarray(codes, dtype=np.float32)) @ self.codes.T
        top_k = min(top_k, len(self.codes))
        best = np.argpartition(-similarity, top_k - 1, axis=1)[:, :top_k]
        order = np.argsort(-np.take_along_axis(similarity, best, axis=1), axis=1)
        best = np.take_along_axis(best, order, axis=1)
        return best, np.take_along_axis(similarity, best, axis=1)

    def estimate(
        self,
        encoder: keras.Model,
        crops: np.ndarray,
        boxes: np.ndarray,
        K: np.ndarray,
        top_k: int = 1,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """6D poses of objects from their square crops and 2D boxes in a test image.

        Args:
            encoder: the network the codebook was built with.
            crops: (N, S, S, 3) crops made with ``square_crop(image, box, pad_factor, S)``,
                uint8 or float in [0, 1].
            boxes: (N, 4) the (x, y, w, h) boxes the crops were made from.
            K: (3, 3) intrinsics of the test camera, or (N, 3, 3), one per crop.
            top_k: pose hypotheses per object.

        Returns:
            Rotations (N, top_k, 3, 3), translations (N, top_k, 3) in mm and cosine
            similarities (N, top_k).
        """
        self.check_encoder(encoder)
        crops = np.asarray(crops)
        indices, scores = self.nearest(_encode(encoder, crops), top_k)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        K = np.broadcast_to(np.asarray(K, dtype=np.float64), (len(boxes), 3, 3))
        rotations = np.empty((*indices.shape, 3, 3))
        translations = np.empty((*indices.shape, 3))
        for i, row in enumerate(indices):
            for j, index in enumerate(row):
                rotations[i, j], translations[i, j] = self.pose_from_view(index, boxes[i], K[i])
        return rotations, translations, scores

    def pose_from_view(self, index: int, box, K_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 6D pose of an object that looks like view ``index`` inside ``box``.

        Args:
            index: a codebook view.
            box: the object's (x, y, w, h) box in the test image.
            K_test: the test camera's intrinsics.

        Returns:
            R (3, 3) and t (3,) in mm, model to test camera.
        """
        box = np.asarray(box, dtype=np.float64)
        K_train = self.camera.camera_matrix
        radius = self.camera.radius
        view_box = self.boxes[index].astype(np.float64)
        # Distance: the object appears smaller in proportion to its distance, corrected for
        # the test camera's focal length.
        focal_ratio = np.mean([K_test[0, 0] / K_train[0, 0], K_test[1, 1] / K_train[1, 1]])
        z = np.linalg.norm(view_box[2:]) / np.linalg.norm(box[2:]) * focal_ratio * radius
        # The box centre need not be the projection of the model origin: subtract the
        # codebook view's own offset, measured at the rendering distance.
        view_offset = view_box[:2] + view_box[2:] / 2 - K_train[:2, 2]
        test_offset = box[:2] + box[2:] / 2 - K_test[:2, 2]
        x = test_offset[0] * z / K_test[0, 0] - view_offset[0] * radius / K_train[0, 0]
        y = test_offset[1] * z / K_test[1, 1] - view_offset[1] * radius / K_train[1, 1]
        t = np.array([x, y, z])
        # An object off the optical axis is seen from a tilted direction: rotate the view's
        # rotation by the angles between the optical axis and the ray to the object.
        alpha_x, alpha_y = -np.arctan(t[0] / t[2]), -np.arctan(t[1] / t[2])
        about_x = np.array(
            [
                [1, 0, 0],
                [0, np.cos(alpha_y), -np.sin(alpha_y)],
                [0, np.sin(alpha_y), np.cos(alpha_y)],
            ]
        )
        about_y = np.array(
            [
                [np.cos(alpha_x), 0, -np.sin(alpha_x)],
                [0, 1, 0],
                [np.sin(alpha_x), 0, np.cos(alpha_x)],
            ]
        )
        return about_y @ about_x @ self.rotations[index].astype(np.float64), t

    def check_encoder(self, encoder: keras.Model) -> None:
        """Raises a clear error if ``encoder`` is not the network that made this codebook."""
        _check_encoder(encoder, self.camera.image_size)
        if encoder_fingerprint(encoder) != self.fingerprint:
            raise AAEError(
                "this codebook was built with another network (its weights or architecture "
                "differ); rebuild it with `aae embed` or Codebook.create for this encoder"
            )

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the codebook to ``path`` (.npz) atomically."""
        from kt_predictive.storage import atomic_write

        path = Path(path)
        meta = {
            "format": CODEBOOK_FORMAT,
            "fingerprint": self.fingerprint,
            "camera": _camera_dict(self.camera),
        }
        atomic_write(
            path,
            lambda file: np.savez(
                file,
                codes=self.codes,
                rotations=self.rotations,
                boxes=self.boxes,
                meta=np.array(json.dumps(meta)),
            ),
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Codebook:
        """Reads a codebook written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"codebook {path} does not exist; build it with `aae embed`")
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != CODEBOOK_FORMAT:
                raise AAEError(
                    f"codebook {path} has format {meta.get('format')}; rebuild it with `aae embed`"
                )
            camera = _camera_from_dict(meta["camera"])
            return cls(data["codes"], data["rotations"], data["boxes"], camera, meta["fingerprint"])


def _camera_dict(camera: TrainingSetConfig) -> dict:
    return {name: getattr(camera, name) for name in camera.__dataclass_fields__}


def _camera_from_dict(values: dict) -> TrainingSetConfig:
    return TrainingSetConfig(**{**values, "K": tuple(map(tuple, values["K"]))})


def _check_encoder(encoder: keras.Model, image_size: int) -> None:
    expected = (image_size, image_size, 3)
    if tuple(encoder.input_shape[1:]) != expected:
        raise AAEError(
            f"the encoder takes {tuple(encoder.input_shape[1:])} images but the codebook is for "
            f"{expected}; use the network trained at image_size={image_size}"
        )


def _encode(encoder: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Codes of uint8 or [0, 1] float images, a batch at a time (92,232 paper-size crops
    would take 18 GB as float32 at once).

    The encoder takes [0, 255] images and scales them itself (``aae.net.model``): uint8 crops go
    in unchanged, exactly as training batches do; float crops in [0, 1] are brought to that
    range first.
    """
    codes = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        if batch.dtype != np.uint8:
            batch = np.asarray(batch, dtype=np.float32) * np.float32(255.0)
        codes.append(np.asarray(encoder(batch, training=False), dtype=np.float32))
    return np.concatenate(codes)


def _normalise(codes: np.ndarray) -> np.ndarray:
    return codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
