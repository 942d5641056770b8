"""The AAE run report's judgement calls: a collapsed network is flagged, Kendall's tau needs
three points, and a run's files have names without spaces."""

import keras
import numpy as np
import pytest

from aae.net.configs import SUNDERMEYER
from aae.profiles import get_profile
from aae.report import collapse_note, is_collapsed, output_spread, top_k_table
from aae.search import RunPaths, profile_line
from kt_predictive import TrialRecord
from kt_predictive.report import SearchSummary


def pixelwise(kernel_scale):
    """A real Keras model, a 1x1 convolution: the identity with scale 1, a constant output
    (its bias) with scale 0."""
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(3, 1, activation="sigmoid")]
    )
    conv = model.layers[-1]
    conv.set_weights(
        [kernel_scale * np.eye(3).reshape(1, 1, 3, 3) * 8.0, np.full(3, -4.0 * kernel_scale)]
    )
    return model


def images(n=8, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 32, 32, 3)).astype("float32")


def test_a_network_with_one_output_for_every_input_is_collapsed():
    reacting = output_spread(pixelwise(1.0), images())
    assert reacting > 0.1 and not is_collapsed(reacting)
    constant = output_spread(pixelwise(0.0), images())
    assert constant < 1e-6 and is_collapsed(constant)
    # An untrained AAE outputs almost the same grey for every input, as a collapsed one does.
    untrained = get_profile("tiny").network.build(SUNDERMEYER)
    assert is_collapsed(output_spread(untrained, images()))


def test_the_report_says_which_networks_collapsed():
    assert collapse_note({"searched best": 0.12, "Sundermeyer": 0.09, "BOP": 0.1}) == []
    note = " ".join(collapse_note({"searched best": 1e-5, "Sundermeyer": 0.09, "BOP": 0.1}))
    assert "**Collapsed: searched best.** It outputs the same image whatever the input" in note
    assert "0.0000" in note and "means nothing" in note


def summary_with_finished(n):
    records = [
        TrialRecord(
            str(i),
            {"LR": 0.001},
            "continuation",
            [0.3],
            real_final=0.1 + 0.01 * i,
            predicted=0.2 + 0.01 * i,
            status="complete",
            steps=40,
            iteration=None,
            parent_id=f"p{i}",
        )
        for i in range(n)
    ]
    return SearchSummary(
        phase="done",
        grids={},
        records=records,
        history=[],
        fixed={},
        thresholds={},
        top_k=n,
        predictor_report=None,
    )


@pytest.mark.parametrize(("n", "has_tau"), [(1, False), (2, False), (3, True), (4, True)])
def test_kendall_tau_needs_three_points(n, has_tau):
    rows, tau = top_k_table(summary_with_finished(n))
    assert len(rows) == n
    assert (tau is not None) == has_tau
    if has_tau:
        assert tau == pytest.approx(1.0)  # predicted and real in the same order


def test_run_files_have_no_spaces(tmp_path):
    paths = RunPaths(tmp_path)
    for name in ("searched best", "trial 0003", "Sundermeyer"):
        assert " " not in paths.evaluation(name).name and " " not in paths.network(name).name
    assert paths.evaluation("searched best").name == "searched_best.json"


def test_the_runner_and_the_commands_print_the_profile_in_one_line():
    tiny = get_profile("tiny")
    assert profile_line(tiny, tiny) == "profile tiny (--verbose prints every setting)"
    changed = tiny.with_overrides({"search.full_steps": "80", "search.reward": "linear"})
    assert profile_line(tiny, changed) == (
        "profile tiny with search.full_steps=80, search.reward='linear' (--verbose prints every "
        "setting)"
    )
    assert "--verbose" in runner_help()


def runner_help():
    import contextlib
    import io

    from aae.search import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["--help"])
    return out.getvalue()
