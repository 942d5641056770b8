"""AAESurrogate (bench/aae_surrogate.py) on small synthetic curve tables.

The tables are written by the collection script's own ``Table`` (the real file format and
code path); their curves are made up, fast to build, with known structure: the final loss
grows with the learning rate index, and the largest learning rate (2e-2) diverges.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from aae_surrogate import AAESurrogate, CurveTable, config_index, flat_index
from collect_aae_curves import FULL_STEPS, Table, config_values, sample_configs, table_meta

from aae.net.configs import SEARCH_SPACE

DIVERGE_AT = (37, 121)


def _curve(indices: tuple[int, ...], seed: int) -> np.ndarray:
    values = config_values(indices)
    rng = np.random.default_rng([seed, *indices])
    steps = np.arange(FULL_STEPS)
    floor = 0.05 + 0.02 * indices[-1] + 0.01 * indices[0] + 0.003 * seed
    return (floor + 0.2 * np.exp(-steps / (30 + 20 * indices[-1]))) * np.exp(
        rng.normal(0, 0.01 * (1 + (values["OPT"] == "SGD")), FULL_STEPS)
    )


def _write_table(path: Path, n: int = 40, repeats: int = 4, diverging: bool = True) -> Table:
    table = Table(table_meta(0))
    for config_id, indices in enumerate(sample_configs(n, seed=3)):
        for seed in (0, 1) if config_id < repeats else (0,):
            losses = _curve(indices, seed)
            values = config_values(indices)
            if diverging and values["LR"] == 2e-2:
                # A run stops at its first non-finite loss, which is kept.
                stop = DIVERGE_AT[config_id % 2]
                losses = np.append(losses[: stop - 1], np.nan)
            table.add(config_id, indices, seed, losses.astype(np.float32), 1.0 + config_id)
    table.save(path)
    return table


@pytest.fixture(scope="module")
def table_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("curves") / "curves.npz"
    written = _write_table(path)
    # Make sure the fixture holds what the divergence tests need.
    diverged = [s < FULL_STEPS for s in written.steps]
    assert 0 < sum(diverged) < len(diverged)
    return path


@pytest.fixture(scope="module")
def surrogate(table_path) -> AAESurrogate:
    return AAESurrogate(CurveTable.load(table_path), n_estimators=20)


def _unmeasured(table: CurveTable, **changes) -> dict:
    measured = set(flat_index(table.hp_index).tolist())
    for indices in sample_configs(200, seed=11):
        values = {**config_values(indices), **changes}
        if int(flat_index(np.array([config_index(values)]))[0]) not in measured:
            return values
    raise AssertionError("no unmeasured configuration found")


def test_load_answers_measured_runs_exactly(table_path):
    surrogate = AAESurrogate.load(table_path)
    table = surrogate.table
    assert surrogate.full_steps == FULL_STEPS
    for run in range(len(table)):
        if table.diverged[run]:
            continue
        curve = surrogate.curve(table.values(run), seed=int(table.train_seed[run]))
        assert curve.shape == (FULL_STEPS,) and curve.dtype == np.float64
        np.testing.assert_array_equal(curve, table.curves[run])


def test_measured_divergence_is_inf_from_the_step_it_happened(surrogate):
    table = surrogate.table
    for run in np.flatnonzero(table.diverged):
        curve = surrogate.curve(table.values(run), seed=int(table.train_seed[run]))
        stop = int(table.steps[run])
        assert stop in DIVERGE_AT
        np.testing.assert_array_equal(curve[: stop - 1], table.curves[run, : stop - 1])
        assert np.all(np.isposinf(curve[stop - 1 :]))


def test_unmeasured_curves_are_deterministic_per_values_and_seed(surrogate, table_path):
    values = _unmeasured(surrogate.table, OPT="Adam")
    curve = surrogate.curve(values, seed=4)
    assert curve.shape == (FULL_STEPS,) and curve.dtype == np.float64
    assert np.all(np.isfinite(curve)) and np.all(curve > 0)
    # Another instance (another process, a rerun) gives the same curve.
    again = AAESurrogate(CurveTable.load(table_path), n_estimators=20)
    np.testing.assert_array_equal(again.curve(values, seed=4), curve)
    assert not np.array_equal(surrogate.curve(values, seed=5), curve)


def test_other_seeds_of_a_measured_configuration_keep_its_window_means_up_to_seed_noise(surrogate):
    table = surrogate.table
    run = next(
        r for r in range(len(table)) if not table.diverged[r] and table.values(r)["OPT"] != "SGD"
    )
    measured = table.window_means()[run]
    generated = surrogate.curve(table.values(run), seed=9)
    assert not np.array_equal(generated, table.curves[run])
    means = generated.reshape(-1, 10).mean(axis=1)
    # The table's two seeds differ by a few percent; so must the generated seed.
    assert np.max(np.abs(np.log(means / measured))) < 0.1


def test_unmeasured_curve_follows_the_table(surrogate):
    # In the table the final loss grows with the LR index; a forest on it must see that.
    table = surrogate.table
    base = _unmeasured(table, OPT="Adam", LR=2e-5)
    finals = [
        surrogate.expected_curve({**base, "LR": lr})[-40:].mean() for lr in SEARCH_SPACE["LR"]
    ]
    assert finals[0] < finals[-1]
    low, high = (
        np.nanmin(table.final_means()),
        np.nanmax(table.final_means()[np.isfinite(table.final_means())]),
    )
    assert all(low * 0.9 < f < high * 1.1 for f in finals)


def test_divergence_is_predicted_from_measured_divergences(surrogate):
    values = _unmeasured(surrogate.table, OPT="SGD", LR=2e-2)
    curves = [surrogate.curve(values, seed=s) for s in range(20)]
    diverged = [c for c in curves if np.isinf(c).any()]
    assert len(diverged) >= 10
    for curve in diverged:
        stop = int(np.argmax(np.isinf(curve))) + 1
        assert stop in DIVERGE_AT  # the step of a measured divergence, not an invented one
        assert np.all(np.isposinf(curve[stop - 1 :])) and np.all(np.isfinite(curve[: stop - 1]))
    safe = _unmeasured(surrogate.table, OPT="Adam", LR=2e-5)
    assert surrogate.divergence_probability(safe) < 0.5


def test_a_table_without_divergence_never_diverges(tmp_path):
    path = tmp_path / "curves.npz"
    _write_table(path, n=12, repeats=0, diverging=False)
    surrogate = AAESurrogate(CurveTable.load(path), n_estimators=5)
    assert len(surrogate.seed_differences) == 0  # no repeats: no seed perturbation
    values = _unmeasured(surrogate.table, OPT="SGD", LR=2e-2)
    assert all(np.all(np.isfinite(surrogate.curve(values, seed=s))) for s in range(5))


def test_space_is_table_1(surrogate):
    hp = surrogate.space()
    assert [p.name for p in hp.space] == list(SEARCH_SPACE)
    for p in hp.space:
        assert list(p.values) == list(SEARCH_SPACE[p.name])
    assert math.prod(len(p.values) for p in hp.space) == 82944


def test_bad_input_is_refused_clearly(surrogate, tmp_path):
    values = surrogate.table.values(0)
    with pytest.raises(ValueError, match="outside the search space"):
        surrogate.curve({**values, "LR": 0.5})
    with pytest.raises(ValueError, match="missing"):
        surrogate.curve({k: v for k, v in values.items() if k != "KE"})
    with pytest.raises(ValueError, match="seed"):
        surrogate.curve(values, seed=-1)
    with pytest.raises(FileNotFoundError, match="collect_aae_curves"):
        AAESurrogate.load(tmp_path / "missing.npz")
