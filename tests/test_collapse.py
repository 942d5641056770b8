"""The collapse statistics, computed by hand on small arrays."""

import numpy as np
import pytest

from aae.errors import AAEError
from aae.pose.collapse import collapse_warning, mean_code_cosine, reconstruction_spread


def test_mean_code_cosine_by_hand():
    # Pairs: (a, b) cos 0, (a, c) cos 1/sqrt(2), (b, c) cos 1/sqrt(2).
    codes = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    assert mean_code_cosine(codes) == pytest.approx((0 + 2 / np.sqrt(2)) / 3)
    assert mean_code_cosine(np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]])) == pytest.approx(1)
    assert mean_code_cosine(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1)
    with pytest.raises(AAEError, match="at least 2 codes"):
        mean_code_cosine(np.ones((1, 4)))


def test_reconstruction_spread_by_hand():
    same = np.full((3, 2, 2, 1), 0.3)
    assert reconstruction_spread(same) == 0.0
    two = np.stack([np.zeros((2, 2, 1)), np.ones((2, 2, 1))])
    assert reconstruction_spread(two) == pytest.approx(0.5)  # std of {0, 1} per pixel


def test_a_collapsed_network_is_flagged_and_a_healthy_one_is_not():
    rng = np.random.default_rng(0)
    collapsed_codes = np.ones((20, 8)) + 1e-3 * rng.normal(size=(20, 8))
    healthy_codes = rng.normal(size=(20, 8))
    line = collapse_warning(mean_code_cosine(collapsed_codes))
    assert line is not None and "codes are nearly identical" in line and "try" in line
    assert collapse_warning(mean_code_cosine(healthy_codes)) is None
    flat = np.zeros((4, 8, 8, 3))
    assert "no spread" in collapse_warning(None, reconstruction_spread(flat))
    assert collapse_warning(None, reconstruction_spread(rng.uniform(size=(4, 8, 8, 3)))) is None


def test_the_cli_warns_on_a_collapsed_codebook_and_not_on_a_healthy_one(capsys):
    from aae.cli import _warn_if_collapsed

    rng = np.random.default_rng(1)
    _warn_if_collapsed(mean_code_cosine(np.ones((10, 4)) + 1e-4 * rng.normal(size=(10, 4))))
    assert "aae: warning: collapsed network" in capsys.readouterr().err
    _warn_if_collapsed(mean_code_cosine(rng.normal(size=(10, 4))))
    assert capsys.readouterr().err == ""
