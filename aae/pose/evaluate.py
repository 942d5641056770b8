"""ADD(-S) recall of an encoder and its codebook on a BOP test set, with ground-truth boxes.

As in the original AAE evaluation, the 2D detector is replaced by the ground-truth box of
each instance (``bbox_obj``, the box of the whole silhouette), so the numbers measure the
pose estimator alone. Besides the aggregates, every instance keeps what it was matched with
(the codebook view, the estimated and true poses, its errors), and :func:`save_pose_figure`
draws them, so a bad recall can be traced to its cause.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import matplotlib

from aae.errors import AAEError, UnknownNameError

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
import numpy as np
import trimesh
from tqdm.auto import tqdm

from aae.data.bop import BopDataset
from aae.data.crop import bbox_from_mask, square_crop
from aae.data.mesh import model_points
from aae.pose.codebook import Codebook
from aae.pose.metrics import pose_error, recall, rotation_error_deg


@dataclass(frozen=True)
class InstancePose:
    """The estimate of one test instance, in plain JSON types (lists, floats).

    Attributes:
        scene_id, im_id: the BOP image.
        box: the ground-truth (x, y, w, h) box the crop was made from.
        view: index of the codebook view the crop's code matched best.
        similarity: cosine similarity of that match.
        R_est, t_est: the estimated pose (3x3 nested list, 3 values in mm).
        R_gt, t_gt: the true pose.
        error: ADD (ADI for symmetric objects), mm.
        rotation_error: geodesic angle between R_est and R_gt, degrees.
        translation_error: |t_est - t_gt|, mm.
        correct: whether ``error`` is within the threshold.
    """

    scene_id: int
    im_id: int
    box: list[float]
    view: int
    similarity: float
    R_est: list[list[float]]
    t_est: list[float]
    R_gt: list[list[float]]
    t_gt: list[float]
    error: float
    rotation_error: float
    translation_error: float
    correct: bool

    def to_json(self) -> dict:
        """The instance as a JSON object."""
        return asdict(self)


@dataclass(frozen=True)
class PoseEvaluation:
    """Pose errors of every evaluated instance and the resulting recall.

    Attributes:
        errors: ADD (or ADI for symmetric objects) per instance, mm.
        rotation_errors: geodesic rotation error per instance, degrees.
        diameter: the object's diameter, mm.
        symmetric: whether ADI was used.
        recall: fraction of errors <= threshold * diameter.
        threshold: the fraction of the diameter (0.1 by convention).
        instances: every instance's estimate (:class:`InstancePose`), in evaluation order;
            empty for evaluations stored before it existed.
    """

    errors: np.ndarray
    rotation_errors: np.ndarray
    diameter: float
    symmetric: bool
    recall: float
    threshold: float = 0.1
    instances: tuple[InstancePose, ...] = field(default=())

    def __post_init__(self) -> None:
        # Read back from JSON (a cached evaluation), instances are plain dicts.
        instances = tuple(InstancePose(**i) if isinstance(i, dict) else i for i in self.instances)
        object.__setattr__(self, "instances", instances)

    @property
    def metric(self) -> str:
        return "ADI" if self.symmetric else "ADD"


def evaluate_on_bop(
    dataset: BopDataset,
    obj_id: int,
    encoder: keras.Model,
    codebook: Codebook,
    threshold: float = 0.1,
    max_instances: int | None = None,
    progress: bool = True,
) -> PoseEvaluation:
    """Estimates the pose of every test instance of ``obj_id`` and scores it.

    Args:
        dataset: a BOP split (real LineMOD, or one made by ``aae.data.synthetic``).
        obj_id: the object to evaluate.
        encoder: the trained encoder; ``codebook`` must have been built with it.
        threshold: correct if the error is at most this fraction of the diameter.
        max_instances: evaluate at most this many instances (in dataset order).
    """
    codebook.check_encoder(encoder)
    info = dataset.models_info.get(obj_id)
    if info is None:
        raise UnknownNameError(
            f"object id {obj_id} is not in {dataset.root}; its object ids are "
            f"{list(dataset.obj_ids)}"
        )
    points = model_points(dataset.load_model(obj_id))
    crops, boxes, cameras, truths, where = _test_crops(
        dataset, obj_id, codebook, max_instances, progress
    )
    rotations, translations, scores = codebook.estimate(
        encoder, np.stack(crops), np.array(boxes), np.stack(cameras)
    )
    views, _ = codebook.nearest(_codes(encoder, crops), 1)
    instances = []
    for i, ((R_gt, t_gt), (scene_id, im_id)) in enumerate(zip(truths, where, strict=True)):
        R, t = rotations[i, 0], translations[i, 0]
        error = pose_error(info.is_symmetric, R, t, R_gt, t_gt, points)
        instances.append(
            InstancePose(
                scene_id=scene_id,
                im_id=im_id,
                box=[float(v) for v in boxes[i]],
                view=int(views[i, 0]),
                similarity=float(scores[i, 0]),
                R_est=R.tolist(),
                t_est=t.tolist(),
                R_gt=R_gt.tolist(),
                t_gt=t_gt.tolist(),
                error=error,
                rotation_error=rotation_error_deg(R, R_gt),
                translation_error=float(np.linalg.norm(t - t_gt)),
                correct=bool(error <= threshold * info.diameter),
            )
        )
    errors = np.array([i.error for i in instances])
    return PoseEvaluation(
        errors=errors,
        rotation_errors=np.array([i.rotation_error for i in instances]),
        diameter=info.diameter,
        symmetric=info.is_symmetric,
        recall=recall(errors, info.diameter, threshold),
        threshold=threshold,
        instances=tuple(instances),
    )


def _test_crops(
    dataset: BopDataset, obj_id: int, codebook: Codebook, max_instances: int | None, progress: bool
):
    """The crops, boxes, cameras, true poses and (scene, image) ids of the test instances."""
    camera = codebook.camera
    crops, boxes, cameras, truths, where = [], [], [], [], []
    for image in tqdm(dataset.images(obj_id=obj_id), desc="Test images", disable=not progress):
        rgb = image.load_rgb()
        for instance in image.objects:
            crops.append(square_crop(rgb, instance.bbox_obj, camera.pad_factor, camera.image_size))
            boxes.append(instance.bbox_obj)
            cameras.append(image.K)
            truths.append((instance.R, instance.t))
            where.append((image.scene_id, image.im_id))
        if max_instances is not None and len(crops) >= max_instances:
            break
    if not crops:
        raise AAEError(f"{dataset.root} has no test instance of object {obj_id}")
    n = len(crops) if max_instances is None else max_instances
    return crops[:n], boxes[:n], cameras[:n], truths[:n], where[:n]


def _codes(encoder: keras.Model, crops: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """The codes of uint8 crops, a batch at a time (LineMOD has ~1200 instances per object)."""
    codes = [
        np.asarray(
            encoder(np.stack(crops[i : i + batch_size]).astype(np.float32) / 255.0, training=False)
        )
        for i in range(0, len(crops), batch_size)
    ]
    return np.concatenate(codes).astype(np.float32)


def save_pose_figure(
    dataset: BopDataset,
    obj_id: int,
    model: keras.Model,
    codebook: Codebook,
    evaluation: PoseEvaluation,
    path: str | os.PathLike,
    max_rows: int = 8,
    mesh: trimesh.Trimesh | None = None,
) -> Path:
    """One row per instance (the worst ``max_rows`` first): the test crop, the network's
    reconstruction, the best codebook view, and the model's points projected at the
    estimated pose (red) and the true pose (green) over the crop.

    Args:
        dataset, obj_id: the evaluated test set and object.
        model: the autoencoder (encoder and decoder) whose encoder made ``codebook``.
        codebook: the codebook the poses were estimated with.
        evaluation: the result of :func:`evaluate_on_bop` on the same inputs.
        path: where to write the PNG.
        max_rows: at most this many instances.
        mesh: the model the codebook views are rendered with (default: the dataset's model).
    """
    from aae.data.render import Light, Renderer

    if not evaluation.instances:
        raise AAEError("the evaluation holds no per-instance results; evaluate again")
    rows = sorted(evaluation.instances, key=lambda i: -i.error)[:max_rows]
    mesh = dataset.load_model(obj_id) if mesh is None else mesh
    points = model_points(mesh, max_points=300)
    camera = codebook.camera
    images = {(im.scene_id, im.im_id): im for im in dataset.images(obj_id=obj_id)}
    figure, axes = plt.subplots(len(rows), 4, figsize=(8.4, 2.7 * len(rows)), squeeze=False)
    with Renderer(camera.render_width, camera.render_height) as renderer:
        for axes_row, instance in zip(axes, rows, strict=True):
            image = images[(instance.scene_id, instance.im_id)]
            crop = square_crop(image.load_rgb(), instance.box, camera.pad_factor, camera.image_size)
            reconstruction = np.asarray(
                model(crop[None].astype(np.float32) / 255.0, training=False)
            )[0]
            view_rgb, view_depth = renderer.render(
                mesh, codebook.rotations[instance.view], np.array([0.0, 0.0, camera.radius]),
                camera.camera_matrix, Light.fixed(),
            )  # fmt: skip
            # Its own box: `mesh` may differ from the one the codebook was rendered with.
            view = square_crop(
                view_rgb, bbox_from_mask(view_depth > 0), camera.pad_factor, camera.image_size
            )
            panels = (
                (crop, f"scene {instance.scene_id} image {instance.im_id}"),
                (np.clip(reconstruction, 0, 1), "reconstruction"),
                (view, f"view {instance.view} (cos {instance.similarity:.2f})"),
                (
                    crop,
                    f"{evaluation.metric} {instance.error:.0f} mm, rot "
                    f"{instance.rotation_error:.0f}°",
                ),
            )
            for ax, (picture, title) in zip(axes_row, panels, strict=True):
                ax.imshow(picture)
                ax.set_title(title, fontsize=7)
                ax.set_xticks([])
                ax.set_yticks([])
            for pose, colour in (
                ((instance.R_est, instance.t_est), "red"),
                ((instance.R_gt, instance.t_gt), "lime"),
            ):
                u, v = _in_crop(
                    points, *pose, image.K, instance.box, camera.pad_factor, camera.image_size
                )
                axes_row[3].scatter(u, v, s=1, c=colour, alpha=0.6)
            axes_row[3].set_xlim(-0.5, camera.image_size - 0.5)
            axes_row[3].set_ylim(camera.image_size - 0.5, -0.5)
    axes[0][3].legend(
        handles=[
            plt.Line2D([], [], ls="", marker="o", c="red"),
            plt.Line2D([], [], ls="", marker="o", c="lime"),
        ],
        labels=["estimated", "true"],
        fontsize=6,
        loc="lower right",
    )
    figure.suptitle(f"object {obj_id}: the {len(rows)} worst instances", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _in_crop(
    points: np.ndarray, R, t, K: np.ndarray, box, pad_factor: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in the square crop of ``box`` of ``points`` posed at (R, t)."""
    camera_points = points @ np.asarray(R).T + np.asarray(t)
    projected = camera_points @ K.T
    u, v = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2]
    # The crop's geometry, as in square_crop: a square of `side` pixels resized to `size`.
    x, y, w, h = (float(c) for c in box)
    side = round(max(w, h) * pad_factor)
    left = np.floor(x + w / 2.0 - (side - 1) / 2.0 + 0.5)
    top = np.floor(y + h / 2.0 - (side - 1) / 2.0 + 0.5)
    scale = size / side
    return (u - left + 0.5) * scale - 0.5, (v - top + 0.5) * scale - 0.5
