"""ADD(-S) recall of an encoder and its codebook on a BOP test set, with ground-truth boxes.

As in the original AAE evaluation, the 2D detector is replaced by the ground-truth box of
each instance (``bbox_obj``, the box of the whole silhouette), so the numbers measure the
pose estimator alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from tqdm.auto import tqdm

from aae.bop import BopDataset
from aae.codebook import Codebook
from aae.crop import square_crop
from aae.mesh import model_points
from aae.metrics import pose_error, recall, rotation_error_deg


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
    """

    errors: np.ndarray
    rotation_errors: np.ndarray
    diameter: float
    symmetric: bool
    recall: float
    threshold: float = 0.1

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
        dataset: a BOP split (real LineMOD, or one made by ``aae.synthetic``).
        obj_id: the object to evaluate.
        encoder: the trained encoder; ``codebook`` must have been built with it.
        threshold: correct if the error is at most this fraction of the diameter.
        max_instances: evaluate at most this many instances (in dataset order).
    """
    codebook.check_encoder(encoder)
    info = dataset.models_info.get(obj_id)
    if info is None:
        raise KeyError(f"object id {obj_id} is not in {dataset.root}; its object ids are {list(dataset.obj_ids)}")
    points = model_points(dataset.load_model(obj_id))
    camera = codebook.camera
    crops, boxes, cameras, truths = [], [], [], []
    for image in tqdm(dataset.images(obj_id=obj_id), desc="Test images", disable=not progress):
        rgb = image.load_rgb()
        for instance in image.objects:
            crops.append(square_crop(rgb, instance.bbox_obj, camera.pad_factor, camera.image_size))
            boxes.append(instance.bbox_obj)
            cameras.append(image.K)
            truths.append((instance.R, instance.t))
        if max_instances is not None and len(crops) >= max_instances:
            break
    if not crops:
        raise ValueError(f"{dataset.root} has no test instance of object {obj_id}")
    crops, boxes, cameras, truths = crops[:max_instances], boxes[:max_instances], cameras[:max_instances], truths[:max_instances]
    rotations, translations, _ = codebook.estimate(encoder, np.stack(crops), np.array(boxes), np.stack(cameras))
    errors = np.array(
        [
            pose_error(info.is_symmetric, R[0], t[0], R_gt, t_gt, points)
            for R, t, (R_gt, t_gt) in zip(rotations, translations, truths, strict=True)
        ]
    )
    rotation_errors = np.array(
        [rotation_error_deg(R[0], R_gt) for R, (R_gt, _) in zip(rotations, truths, strict=True)]
    )
    return PoseEvaluation(
        errors=errors,
        rotation_errors=rotation_errors,
        diameter=info.diameter,
        symmetric=info.is_symmetric,
        recall=recall(errors, info.diameter, threshold),
        threshold=threshold,
    )
