"""How much time the PredictiveOracle itself takes: one decision, one predictor refit.

A decision is what happens between two exploration trials: recomputing the probabilities
from every record (Algorithm 2.2, with the fixing check) and sampling the next configuration.
Both grow with the number of records; the predictor refit grows with the training set. The
records here are synthetic (the AAE's search space, losses drawn at random) — the cost does
not depend on where the numbers come from. Writes section ``oracle-overhead`` of RESULTS.md.

    python bench/oracle_overhead.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras_tuner
import numpy as np
from results import environment, write_section

from aae.net.configs import SEARCH_SPACE
from aae.profiles import get_profile
from kt_predictive import HybridPredictor, PredictiveOracle, Schedule
from kt_predictive.records import TrialRecord

SIZES = (100, 1000, 10000)
# A trial to compare with: the quick profile's exploration trial, 80 steps of the Sundermeyer
# network at 42 ms per step on this CPU (section aae-throughput). At the paper's scale a trial
# is 6000 steps of a network that takes milliseconds per step even on a GPU: minutes.
TRIAL_SECONDS = {"quick profile exploration trial (80 steps x 42 ms, measured here)": 80 * 0.042}


def make_oracle(n_records: int, folder: str, seed: int = 0) -> PredictiveOracle:
    """An oracle in its exploration phase holding ``n_records`` settled records."""
    hp = keras_tuner.HyperParameters()
    for name, values in SEARCH_SPACE.items():
        hp.Choice(name, list(values))
    oracle = PredictiveOracle(
        hyperparameters=hp,
        schedule=Schedule(initial_trials=2, max_iterations=n_records + 10),
        seed=seed,
    )
    oracle.open(folder, "overhead")
    rng = np.random.default_rng(seed)
    for i in range(n_records):
        values = {name: values[rng.integers(len(values))] for name, values in SEARCH_SPACE.items()}
        loss = float(rng.uniform(0.002, 0.2))
        oracle._decisions.records.add(
            TrialRecord(
                trial_id=str(i),
                values=values,
                role="explore",
                iteration=i + 1,
                early=list(rng.uniform(0.01, 0.3, 6)),
                predicted=loss,
                status="complete",
                steps=6000,
            )
        )
    oracle._decisions.bounds = (0.002, 0.2)
    oracle._decisions.phase = "explore"
    return oracle


def time_call(function, repeats: int) -> float:
    """Median seconds of ``repeats`` calls, after one warm-up call."""
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    rows = []
    for n in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            oracle = make_oracle(n, folder)
            allocate = time_call(oracle._decisions.allocate, repeats=20 if n <= 1000 else 5)
            sample = time_call(lambda oracle=oracle: oracle._sample(uniform=False), repeats=50)
            records = list(oracle._decisions.records)
            X = oracle._decisions.encoder().encode_many([(r.values, r.early) for r in records])
            y = np.array([r.predicted for r in records])
            predictor = HybridPredictor(random_state=0)
            refit = time_call(
                lambda X=X, y=y, predictor=predictor: predictor.fit(X, y),
                repeats=3 if n <= 1000 else 1,
            )
            # A window report rewrites its trial's record only; oracle.json (decisions, no
            # records) is written when a trial starts and when it settles.
            report = time_call(
                lambda oracle=oracle, r=records[-1]: oracle._save_record(r), repeats=20
            )
            save = time_call(oracle.save, repeats=5)
        rows.append((n, allocate, sample, refit, report, save))
        print(
            f"{n} records: allocate {allocate * 1e3:.2f} ms, sample {sample * 1e3:.3f} ms, refit "
            f"{refit:.3f} s, "
            f"report write {report * 1e3:.2f} ms, oracle.json {save * 1e3:.1f} ms"
        )

    lines = [
        "## Oracle overhead",
        "",
        environment(),
        "",
        "Reproduce: `python bench/oracle_overhead.py`. Median wall-clock times; the AAE search "
        "space "
        "(9 hyperparameters, 32 values), synthetic records.",
        "",
        "| records | probabilities + fixing (ms) | sampling a configuration (ms) | one decision "
        "(ms) | "
        "predictor refit (s) | one report: its record written (ms) | oracle.json written (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, allocate, sample, refit, report, save in rows:
        lines.append(
            f"| {n:,} | {allocate * 1e3:.2f} | {sample * 1e3:.3f} | "
            f"{(allocate + sample) * 1e3:.2f} | {refit:.3f} "
            f"| {report * 1e3:.2f} | {save * 1e3:.1f} |"
        )
    # Per exploration trial the oracle decides once, writes oracle.json when the trial starts
    # and when it settles, and its record at each window report.
    reports = get_profile("quick").search.early_steps // get_profile("quick").search.window
    lines += [
        "",
        f"Per exploration trial: one decision, {reports} reports (the quick profile's window "
        "reports; each "
        "rewrites that trial's record.json only, whatever the size of the search) and two writes "
        "of "
        "oracle.json (start, settle). Share of a trial:",
        "",
        "| trial | records | oracle time per trial (ms) | share of the trial |",
        "|---|---|---|---|",
    ]
    per_trial_at = {
        n: allocate + sample + reports * report + 2 * save
        for n, allocate, sample, _, report, save in rows
    }
    for label, seconds in TRIAL_SECONDS.items():
        for n, per_trial in per_trial_at.items():
            lines.append(
                f"| {label} | {n:,} | {per_trial * 1e3:.1f} | {100 * per_trial / seconds:.2f}% |"
            )
    lines += [
        "",
        "Records a search holds: the quick profile 10 + 20 + 3, the paper 100 + 800 + 20 (about "
        "10³). "
        f"At 10³ records the oracle takes {per_trial_at[1000] * 1e3:.0f} ms per trial; a paper "
        "exploration trial "
        "is 6000 steps, minutes even at a few milliseconds per step on a GPU, so the oracle stays "
        "far below "
        "1% of it. At 10⁴ records (ten times the paper's search) Algorithm 2.2 "
        "(linear in the records) makes the oracle a visible share of a 3-second CPU trial, not of "
        "a real one. "
        "A refit happens once after phase 1 (plus once per phase-4 result with "
        "`refit_predictor=True`), "
        "not per decision.",
    ]
    write_section("oracle-overhead", "\n".join(lines))


if __name__ == "__main__":
    main()
