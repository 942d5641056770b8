"""Pose errors: ADD, ADI (ADD-S), their recall at a fraction of the diameter, rotation angle.

Definitions follow the BOP toolkit (Hinterstoisser et al. 2012): points are the model's
vertices in mm, poses are model-to-camera (R 3x3, t 3 in mm).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from aae.errors import AAEError


def _transform(R: np.ndarray, t: np.ndarray, points: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    points = np.asarray(points, dtype=np.float64)
    if R.shape != (3, 3) or t.shape != (3,):
        raise AAEError(
            f"a pose needs R of shape (3, 3) and t of 3 values, got {R.shape} and {t.shape}"
        )
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise AAEError(f"points must be a non-empty (N, 3) array, got shape {points.shape}")
    return points @ R.T + t


def add(
    R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, points: np.ndarray
) -> float:
    """Average distance between corresponding model points under the two poses (mm)."""
    diff = _transform(R_est, t_est, points) - _transform(R_gt, t_gt, points)
    return float(np.linalg.norm(diff, axis=1).mean())


def adi(
    R_est: np.ndarray, t_est: np.ndarray, R_gt: np.ndarray, t_gt: np.ndarray, points: np.ndarray
) -> float:
    """ADD-S: average distance from each GT-posed point to the closest estimate-posed point (mm)."""
    pts_est = _transform(R_est, t_est, points)
    pts_gt = _transform(R_gt, t_gt, points)
    distances, _ = cKDTree(pts_est).query(pts_gt, k=1)
    return float(distances.mean())


def pose_error(
    symmetric: bool,
    R_est: np.ndarray,
    t_est: np.ndarray,
    R_gt: np.ndarray,
    t_gt: np.ndarray,
    points: np.ndarray,
) -> float:
    """The usual LineMOD error: ADI for symmetric objects, ADD for the others (mm)."""
    metric = adi if symmetric else add
    return metric(R_est, t_est, R_gt, t_gt, points)


def recall(errors: np.ndarray | list[float], diameter: float, threshold: float = 0.1) -> float:
    """Fraction of errors <= threshold * diameter (0.1: the standard ADD(-S) criterion)."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise AAEError("recall of no errors is undefined; pass at least one pose error")
    if diameter <= 0 or threshold <= 0:
        raise AAEError(f"diameter and threshold must be positive, got {diameter} and {threshold}")
    return float(np.mean(errors <= threshold * diameter))


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Geodesic angle (degrees) of the rotation between R_est and R_gt, in [0, 180]."""
    R_est = np.asarray(R_est, dtype=np.float64)
    R_gt = np.asarray(R_gt, dtype=np.float64)
    if R_est.shape != (3, 3) or R_gt.shape != (3, 3):
        raise AAEError(f"rotations must be 3x3, got {R_est.shape} and {R_gt.shape}")
    cos_angle = (np.trace(R_est.T @ R_gt) - 1.0) / 2.0
    # Rounding can push the cosine just outside [-1, 1] for (anti)parallel rotations.
    return float(np.degrees(np.arccos(np.clip(cos_angle, -1.0, 1.0))))
