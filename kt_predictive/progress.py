"""One line per settled trial, in place of keras-tuner's per-trial hyperparameter table.

With hundreds of short exploration trials, a line each reads better than keras-tuner's table
of every hyperparameter for every trial. ``oracle.verbose = 0`` silences it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kt_predictive.records import RecordBook, TrialRecord


@dataclass(frozen=True)
class Position:
    """Where a settled trial stands in its phase, for the progress line."""

    phase: str  # "phase 1", "explore" or "finalize"
    index: int
    total: int


def phase_position(
    record: TrialRecord,
    records: RecordBook,
    initial_trials: int,
    max_iterations: int,
    top_k: int,
    initial_screen: int = 0,
) -> Position:
    """Where ``record`` stands in its phase, out of the phase's planned size
    (``initial_screen``: the configurations a screened phase 1 draws, 0 without)."""
    if record.role == "initial":
        drawn = len(records.by_role("initial"))
        return Position("phase 1", drawn, initial_screen or initial_trials)
    if record.role == "explore":
        return Position("explore", record.iteration, max_iterations)
    continuations = records.by_role("continuation")
    if records.in_phase1(record):
        # A screened phase 1 trains its best fully: "phase 1 full i/initial_trials".
        done = sum(records.in_phase1(r) for r in continuations)
        return Position("phase 1 full", done, initial_trials)
    return Position("finalize", sum(not records.in_phase1(r) for r in continuations), top_k)


def progress_line(
    record: TrialRecord,
    position: Position,
    objective: str,
    best: float | None,
    fixed: dict,
    sign: float = 1.0,
) -> str:
    """The line printed when the oracle has recorded ``record``'s outcome.

    Records hold "lower is better" values; ``sign`` -1 shows a maximised objective as
    measured.
    """
    if record.failed:
        why = (
            f"diverged at step {record.diverged_at}"
            if record.diverged_at
            else record.failure or "crashed"
        )
        outcome = f"failed ({why})"
    elif record.is_predicted_only:
        outcome = f"predicted final {objective} {sign * record.predicted:.5g}"
    elif record.screened_out:
        outcome = f"screened out at step {record.screened_at} (not among the best there)"
    elif record.real_final is None:  # a screened phase 1's trial, before phase 2 predicts it
        outcome = (
            f"last early window {objective} {sign * record.early[-1]:.5g} (the best of phase "
            "1's screen train fully)"
        )
    else:
        outcome = f"final {objective} {sign * record.real_final:.5g}"
        if record.predicted is not None:
            outcome += f" (predicted {sign * record.predicted:.5g})"
    line = (
        f"[{position.phase} {position.index}/{position.total}] trial {record.trial_id}: {outcome}, "
        f"{record.steps} steps in {record.seconds:.1f} s"
    )
    if best is not None:
        line += f" | best {sign * best:.5g}"
    if fixed:
        line += " | fixed " + ", ".join(f"{name}={value}" for name, value in fixed.items())
    return line


def settled_line(
    record: TrialRecord,
    records: RecordBook,
    sizes: tuple[int, int, int],
    objective: str,
    fixed: dict,
    sign: float = 1.0,
    initial_screen: int = 0,
) -> str:
    """:func:`progress_line` of a settled ``record`` of ``records``, with the best real loss
    so far; ``sizes`` are the phases' planned sizes (initial_trials, max_iterations, top_k),
    ``initial_screen`` the configurations a screened phase 1 draws (0 without)."""
    real = records.real()
    best = real[0].real_final if real else None
    position = phase_position(record, records, *sizes, initial_screen=initial_screen)
    return progress_line(record, position, objective, best, fixed, sign=sign)


class SearchProgress:
    """keras-tuner's display protocol, printing :func:`progress_line` once a trial settles.

    keras-tuner calls ``on_trial_end`` before the oracle has settled the record (failures,
    probabilities, fixed values); the oracle calls :meth:`trial_settled` afterwards instead.
    """

    def __init__(self, verbose: int = 1):
        self.verbose = verbose

    def on_trial_begin(self, trial) -> None:
        del trial  # nothing to say until the trial has settled

    def on_trial_end(self, trial) -> None:
        del trial

    def trial_settled(self, line: str) -> None:
        if self.verbose >= 1:
            print(line, flush=True)

    def say(self, message: str) -> None:
        """A one-off message about the search (a phase change, a fixed value)."""
        if self.verbose >= 1:
            print(message, flush=True)

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        del state  # nothing is kept between runs
