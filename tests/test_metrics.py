"""ADD, ADI, recall and rotation error on hand-computed poses."""

import numpy as np
import pytest

from aae.pose.metrics import add, adi, pose_error, recall, rotation_error_deg

I3 = np.eye(3)


def _rot_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _ring(n=36, radius=50.0) -> np.ndarray:
    """Points on a circle about z: symmetric under any rotation about z."""
    angles = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(n)], axis=1)


def test_a_pure_translation_error_is_that_distance():
    points = np.random.default_rng(0).normal(size=(100, 3)) * 40
    t_gt = np.array([0.0, 0.0, 700.0])
    t_est = t_gt + np.array([3.0, 4.0, 0.0])
    assert add(I3, t_est, I3, t_gt, points) == pytest.approx(5.0)
    assert add(I3, t_gt, I3, t_gt, points) == 0.0


def test_add_of_a_rotation_about_the_centre():
    # Rotating a ring of radius r by 180 deg moves every point by 2r.
    points = _ring()
    assert add(_rot_z(180), [0, 0, 700], I3, [0, 0, 700], points) == pytest.approx(100.0)


def test_symmetric_object_rotated_about_its_axis_has_zero_adi_but_large_add():
    points = _ring()
    R_est = _rot_z(180)
    t = np.array([10.0, -5.0, 800.0])
    assert adi(R_est, t, I3, t, points) == pytest.approx(0.0, abs=1e-9)
    assert add(R_est, t, I3, t, points) > 50.0
    assert pose_error(True, R_est, t, I3, t, points) == pytest.approx(0.0, abs=1e-9)
    assert pose_error(False, R_est, t, I3, t, points) == pytest.approx(100.0)


def test_adi_measures_distance_to_the_nearest_estimated_point():
    points = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    # Estimate shifted by 4 in x: GT points 0 and 10 are nearest to estimated 4 and 14 (or 4).
    assert adi(I3, [4.0, 0, 0], I3, [0.0, 0, 0], points) == pytest.approx((4.0 + 4.0) / 2)
    assert adi(I3, [6.0, 0, 0], I3, [0.0, 0, 0], points) == pytest.approx((6.0 + 4.0) / 2)


def test_recall_threshold_arithmetic():
    errors = [5.0, 9.99, 10.0, 10.01, 30.0]
    assert recall(errors, diameter=100.0) == pytest.approx(3 / 5)  # <= 0.1 * 100
    assert recall(errors, diameter=100.0, threshold=0.3) == 1.0
    assert recall(errors, diameter=40.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="at least one pose error"):
        recall([], diameter=100.0)


def test_rotation_error_is_the_geodesic_angle():
    assert rotation_error_deg(I3, I3) == pytest.approx(0.0, abs=1e-6)
    assert rotation_error_deg(_rot_z(30), I3) == pytest.approx(30.0)
    assert rotation_error_deg(_rot_z(-150), _rot_z(30)) == pytest.approx(180.0)
    R_x = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # 90 deg about x
    assert rotation_error_deg(R_x @ _rot_z(10), _rot_z(10)) == pytest.approx(90.0)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        add(I3, [0, 0, 0], I3, [0, 0, 0], np.zeros((5, 2)))
    with pytest.raises(ValueError, match="R of shape"):
        adi(np.eye(4), [0, 0, 0], I3, [0, 0, 0], np.zeros((5, 3)))
