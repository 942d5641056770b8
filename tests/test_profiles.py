"""Profiles and their command-line overrides."""

import pytest

from aae.profiles import PROFILES, get_profile
from aae.search import default_run_folder, parse_overrides


def test_paper_profile_is_the_papers_numbers():
    paper = get_profile("paper")
    assert (paper.network.image_size, paper.network.width, paper.network.latent_dim) == (
        128,
        1.0,
        128,
    )
    search = paper.search
    assert (search.initial_trials, search.max_iterations, search.top_k) == (100, 800, 20)
    assert (search.full_steps, search.early_steps, search.window, search.final_window) == (
        40000,
        6000,
        1000,
        500,
    )
    assert (search.reward, search.beta, search.thresholds) == ("exp", 5.0, None)
    assert paper.codebook.n_views * paper.codebook.n_inplane == 92232
    assert paper.training_set.n_images == 20000


def test_overrides_convert_to_the_fields_type():
    quick = get_profile("quick")
    changed = quick.with_overrides(
        parse_overrides(
            [
                "search.full_steps=1000",
                "search.beta=2.5",
                "test.occluders=false",
                "search.thresholds=0.8",
            ]
        )
    )
    assert changed.search.full_steps == 1000 and changed.search.beta == 2.5
    assert changed.test.occluders is False and changed.search.thresholds == 0.8
    assert (
        get_profile("quick").search.full_steps == quick.search.full_steps != 1000
    )  # the named profile is unchanged
    assert (
        get_profile("tiny").with_overrides({"search.thresholds": "none"}).search.thresholds is None
    )
    assert "search.full_steps = 1000" in changed.describe()


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("search.bogus=1", "unknown setting 'search.bogus'"),
        ("search.full_steps=many", "needs a value of type int"),
        ("search.full_steps", "SECTION.FIELD=VALUE"),
    ],
)
def test_bad_overrides(pair, message):
    with pytest.raises((KeyError, ValueError), match=message):
        get_profile("quick").with_overrides(parse_overrides([pair]))


def test_default_run_folders():
    assert default_run_folder("ape", "quick", {}) == "runs/ape-quick"
    a = default_run_folder("ape", "quick", {"search.full_steps": "10"})
    assert a.startswith("runs/ape-quick-") and a != default_run_folder(
        "ape", "quick", {"search.full_steps": "20"}
    )
    # A run on a dataset's real mesh never shares the stand-in's folder.
    assert default_run_folder("ape", "quick", {}, "lmo") == "runs/ape-quick-lmo"
    assert default_run_folder("ape", "quick", {"search.full_steps": "10"}, "lmo") == a.replace(
        "quick-", "quick-lmo-"
    )
    assert sorted(PROFILES) == ["paper", "quick", "tiny"]
