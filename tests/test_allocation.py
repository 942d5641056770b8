"""Algorithm 2.2 and the performance functions on a hand-computed example."""

import math

import numpy as np
import pytest

from kt_predictive import SearchError
from kt_predictive.allocation import (
    FixedValue,
    allocate,
    exponential_reward,
    linear_reward,
    make_reward,
    newly_fixed,
    resolve_thresholds,
)
from kt_predictive.space import ValueGrid

GRIDS = [
    ValueGrid("A", (1, 2), "numeric"),
    ValueGrid("B", ("x", "y", "z"), "categorical"),
]
# Three dataset entries; m = 0.1 and M = 0.5 are their lowest and highest final losses.
ENTRIES = [({"A": 1, "B": "x"}, 0.1), ({"A": 2, "B": "x"}, 0.3), ({"A": 1, "B": "y"}, 0.5)]


def test_exponential_reward_values():
    # g(x) = exp(-5 (x - 0.1) / 0.4): 1 at m, exp(-2.5) half-way, exp(-5) at M.
    scores = exponential_reward([0.1, 0.3, 0.5], 0.1, 0.5, beta=5.0)
    np.testing.assert_allclose(scores, [1.0, math.exp(-2.5), math.exp(-5.0)])
    # A predicted loss below m scores above 1 (the paper's negative predictions).
    assert exponential_reward(0.0, 0.1, 0.5) > 1.0


def test_linear_reward_values_and_clipping():
    np.testing.assert_allclose(linear_reward([0.1, 0.3, 0.5], 0.1, 0.5), [0.4, 0.2, 0.0])
    assert linear_reward(0.7, 0.1, 0.5) == 0.0  # above M: clipped, never negative


def test_exponential_allocation_by_hand():
    probabilities = allocate(GRIDS, ENTRIES, make_reward("exp", 5.0), 0.1, 0.5)
    g1, g2, g3 = 1.0, math.exp(-2.5), math.exp(-5.0)
    total = g1 + g2 + g3
    # A=1 is used by entries 1 and 3, A=2 by entry 2.
    np.testing.assert_allclose(probabilities["A"], [(g1 + g3) / total, g2 / total])
    # B=x by entries 1 and 2, B=y by entry 3, B=z by none.
    np.testing.assert_allclose(probabilities["B"], [(g1 + g2) / total, g3 / total, 0.0])
    np.testing.assert_allclose(probabilities["A"], [0.924611, 0.075389], atol=1e-6)


def test_linear_allocation_by_hand():
    probabilities = allocate(GRIDS, ENTRIES, make_reward("linear"), 0.1, 0.5)
    # Scores 0.4, 0.2, 0.0: A=1 -> 0.4, A=2 -> 0.2; B=x -> 0.6, y -> 0, z -> 0.
    np.testing.assert_allclose(probabilities["A"], [2 / 3, 1 / 3])
    np.testing.assert_allclose(probabilities["B"], [1.0, 0.0, 0.0])


def test_all_zero_scores_give_uniform_vector():
    probabilities = allocate(GRIDS, [({"A": 1, "B": "x"}, 0.5)], make_reward("linear"), 0.1, 0.5)
    np.testing.assert_allclose(probabilities["A"], [0.5, 0.5])


def test_default_thresholds_are_two_over_cardinality():
    assert resolve_thresholds(GRIDS, None) == {"A": 1.0, "B": 2 / 3}
    assert resolve_thresholds(GRIDS, 0.6) == {"A": 0.6, "B": 0.6}
    assert resolve_thresholds(GRIDS, {"A": 0.9}) == {"A": 0.9, "B": 2 / 3}


def test_threshold_fixes_value_and_keeps_it_fixed():
    probabilities = allocate(GRIDS, ENTRIES, make_reward("exp", 5.0), 0.1, 0.5)
    thresholds = resolve_thresholds(GRIDS, None)
    fixed = newly_fixed(GRIDS, probabilities, thresholds, {}, iteration=7)
    # B=x has 0.9938 >= 2/3; A=1 has 0.9246 < 1 (2/|V_A|).
    assert fixed == {"B": FixedValue("x", 7)}
    # Already fixed hyperparameters are not revisited, even if another value now leads.
    flipped = {"A": np.array([0.5, 0.5]), "B": np.array([0.0, 1.0, 0.0])}
    assert newly_fixed(GRIDS, flipped, thresholds, fixed, iteration=8) == {}


def test_exact_threshold_hit_despite_rounding():
    grid = [ValueGrid("C", (1, 2, 3, 4), "numeric")]
    # A probability of 1/2 computed by normalising can land one ulp below 0.5.
    p = {"C": np.array([0.49999999999999994, 0.2, 0.2, 0.1])}
    assert newly_fixed(grid, p, {"C": 0.5}, {}, 1) == {"C": FixedValue(1, 1)}


def test_bad_reward_settings_are_rejected():
    with pytest.raises(ValueError, match="beta must be > 0"):
        make_reward("exp", 0.0)
    with pytest.raises(ValueError, match="'exp' or 'linear'"):
        make_reward("quadratic")
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        resolve_thresholds(GRIDS, 1.5)
    with pytest.raises(ValueError, match="not in the search space"):
        resolve_thresholds(GRIDS, {"nope": 0.5})


# ---------------------------------------------------------------- the evidence rule, by hand


def test_rank_quantiles_by_hand():
    from kt_predictive.allocation import rank_quantiles

    np.testing.assert_allclose(rank_quantiles([0.3, 0.1, 0.5]), [0.5, 0.0, 1.0])
    # Ties share their mean rank; an outlier is just the worst rank, whatever its size.
    np.testing.assert_allclose(rank_quantiles([0.2, 0.2, 0.1, 7.0]), [0.5, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(rank_quantiles([0.4]), [0.0])


def test_evidence_allocation_by_hand():
    from kt_predictive import AllocationRule

    rule = AllocationRule.evidence()  # rank, exp(-5u), prior 1
    p = rule.probabilities(GRIDS, ENTRIES, 0.1, 0.5)
    g1, g2, g3 = 1.0, math.exp(-2.5), math.exp(-5.0)  # ranks 0, 1/2, 1
    # A=1: entries 1 and 3; A=2: entry 2; each value starts with 1.
    total_a = 2 + g1 + g2 + g3
    np.testing.assert_allclose(p["A"], [(1 + g1 + g3) / total_a, (1 + g2) / total_a])
    # B=z was never used and keeps the prior's share.
    total_b = 3 + g1 + g2 + g3
    np.testing.assert_allclose(p["B"], [(1 + g1 + g2) / total_b, (1 + g3) / total_b, 1 / total_b])


def test_an_outlier_does_not_flatten_the_rank_reward():
    from kt_predictive import AllocationRule

    entries = [*ENTRIES, ({"A": 2, "B": "z"}, 1e6)]  # one diverging network
    paper = AllocationRule.paper().probabilities(GRIDS, entries, 0.1, 1e6)
    rank = AllocationRule.evidence().probabilities(GRIDS, entries, 0.1, 1e6)
    # With (x - m)/(M - m) every sane loss scores ~1: A is near uniform between its values.
    assert abs(paper["A"][0] - paper["A"][1]) < 0.35
    # With ranks the best network still dominates.
    assert rank["A"][0] > rank["A"][1] + 0.2


def test_midway_thresholds_and_min_evidence_by_hand():
    from kt_predictive import AllocationRule

    rule = AllocationRule.evidence()
    assert resolve_thresholds(GRIDS, None, rule) == {"A": 0.75, "B": pytest.approx(2 / 3)}
    assert resolve_thresholds(GRIDS, None, AllocationRule.paper()) == {
        "A": 1.0,
        "B": pytest.approx(2 / 3),
    }
    probabilities = {"A": np.array([0.8, 0.2]), "B": np.array([0.7, 0.2, 0.1])}
    counts = {"A": np.array([2, 1]), "B": np.array([3, 0])}
    fixed = newly_fixed(
        GRIDS, probabilities, {"A": 0.75, "B": 2 / 3}, {}, 4, counts=counts, min_evidence=3
    )
    # A=1 is above its threshold but only 2 records used it; B=x has 3.
    assert fixed == {"B": FixedValue("x", 4)}
    # Evidence of every value: B=x has 3 records but B=z only 2, so B waits; A fixes.
    counts = {"A": np.array([3, 3]), "B": np.array([3, 3, 2])}
    every = newly_fixed(
        GRIDS,
        probabilities,
        {"A": 0.75, "B": 2 / 3},
        {},
        4,
        counts=counts,
        min_evidence=3,
        evidence_of="every value",
    )
    assert every == {"A": FixedValue(1, 4)}
    with pytest.raises(SearchError, match="evidence_of must be 'fixed value' or 'every value'"):
        AllocationRule(evidence_of="most")


def exploring_decisions(rule):
    """SearchDecisions in its exploration phase, with no budget and no running trials."""
    from kt_predictive import Schedule, TrainingSteps
    from kt_predictive.decisions import SearchDecisions

    decisions = SearchDecisions(
        TrainingSteps(24, 8, 4, 4),
        Schedule(initial_trials=2, max_iterations=1000, top_k=0),
        allocation=rule,
        seed=7,
        grids=lambda: GRIDS,
    )
    decisions.phase = "explore"
    return decisions


def test_uniform_share_draws_that_share_of_exploration_uniformly():
    from kt_predictive import AllocationRule

    decisions = exploring_decisions(AllocationRule(uniform_share=0.25))
    calls = []

    def draw(uniform, keep_fixed=True):
        calls.append(uniform)
        return {"A": len(calls), "B": "x"}  # never a repeat: the draw itself is not tested

    for i in range(200):
        decisions.next_trial(f"t{i}", draw)
    # The decisions' generator (seed 7) draws one number per iteration and nothing else here:
    # an iteration draws uniformly exactly when that number is below 0.25.
    expected = list(np.random.default_rng(7).random(200) < 0.25)
    assert calls == expected
    assert 30 < sum(calls) < 70  # about a quarter of 200

    # A rule without uniform draws (the paper's) draws no random number for it: its
    # searches draw exactly as they did before the field existed.
    assert AllocationRule.paper().uniform_share == 0 and AllocationRule().uniform_share == 1 / 3
    plain = exploring_decisions(AllocationRule(uniform_share=0))
    state = plain.rng.bit_generator.state
    calls.clear()
    plain.next_trial("t0", draw)
    assert calls == [False] and plain.rng.bit_generator.state == state


def test_a_uniform_draw_that_finds_nothing_new_falls_back_to_the_allocation():
    from kt_predictive import AllocationRule

    decisions = exploring_decisions(AllocationRule(uniform_share=0.999))
    calls = []

    def draw(uniform, keep_fixed=True):
        calls.append(uniform)
        return None if uniform else {"A": 1, "B": "x"}

    record = decisions.next_trial("t0", draw)
    assert calls == [True, False] and record.values == {"A": 1, "B": "x"}


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5, True, "1/3"])
def test_a_bad_uniform_share_is_one_clear_error(share):
    from kt_predictive import AllocationRule

    with pytest.raises(SearchError, match=r"uniform_share must be a number in \[0, 1\)"):
        AllocationRule(uniform_share=share)


def test_phase_sizes_by_hand():
    from kt_predictive import TrainingSteps
    from kt_predictive.schedule import size_phases

    steps = TrainingSteps(400, 80, 20, 80)  # e = 0.2
    # B = 30: 6 initial (a fifth), top_k = round(15 / 0.8) = 19 (half), and
    # floor((30 - 6 - 19 * 0.8) / 0.2) = 44 explored.
    sizes = size_phases(30, steps)
    assert (sizes.initial_trials, sizes.max_iterations, sizes.top_k) == (6, 44, 19)
    assert sizes.cost(steps) == pytest.approx(30)
    # An eighth to continuations: round(3.75 / 0.8) = 5 and (30 - 6 - 4) / 0.2 = 100.
    eighth = size_phases(30, steps, final_share=0.125)
    assert (eighth.max_iterations, eighth.top_k) == (100, 5)
    with pytest.raises(ValueError, match="too small"):
        size_phases(3, steps)
