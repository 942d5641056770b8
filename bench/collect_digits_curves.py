"""Real Keras learning curves of the digits CNN on a grid of its space, collected once.

Every configuration of ``search.spaces.DIGITS_GRID`` (a subset of examples/digits_cnn.py's
space) is trained with Keras on scikit-learn's bundled digits (the training split of
``load_data``) for ``DIGITS_FULL_STEPS`` optimizer steps; the training loss of every step
(``kt_predictive.StepLossRecorder``) is stored in ``bench/data/digits_curves.npz`` (format:
``bench/search/tables.py``). ``bench/search_efficiency.py`` replays these curves. Writes
section ``digits-curves`` of bench/RESULTS.md.

    nice -n 19 python bench/collect_digits_curves.py              # one training seed
    nice -n 19 python bench/collect_digits_curves.py --seeds 1 2  # a second run per configuration
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import keras
import keras_tuner
from digits_cnn import DigitsCNN, load_data
from results import write_section
from search.spaces import DIGITS_FULL_STEPS, DIGITS_GRID, DIGITS_TABLE
from search.tables import collect, collection_markdown

from kt_predictive.callbacks import StepLossRecorder

FINAL_WINDOW = 40


class _Steps(StepLossRecorder):
    """Stops after ``steps`` optimizer steps or at a non-finite loss."""

    def __init__(self, steps: int):
        super().__init__()
        self.target = steps

    def after_step(self, value: float) -> bool:
        return self.steps >= self.target or value != value or abs(value) == float("inf")


def train(values: dict, seed: int) -> list[float]:
    """One real training of a configuration: its loss at every step."""
    hypermodel = DigitsCNN()
    x, _, y, _ = load_data()
    hp = keras_tuner.HyperParameters()
    for name, grid in DIGITS_GRID.items():
        hp.Choice(name, grid)
    hp.values.update(values)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hp)
    recorder = _Steps(DIGITS_FULL_STEPS)
    hypermodel.fit(hp, model, x, y, epochs=DIGITS_FULL_STEPS, callbacks=[recorder], verbose=0)
    return [float(v) for v in recorder.losses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--out", type=Path, default=DIGITS_TABLE)
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args()
    import tensorflow as tf

    # One thread: the other core stays free for the other jobs on this machine.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    meta = {
        "model": "examples/digits_cnn.py DigitsCNN",
        "data": "load_data() training split",
        "steps": DIGITS_FULL_STEPS,
        "keras_backend": keras.backend.backend(),
    }
    table, seconds = collect(
        args.out, DIGITS_GRID, DIGITS_FULL_STEPS, meta, args.seeds, train, args.max_minutes
    )
    what = (
        "the digits CNN of examples/digits_cnn.py trained with Keras (TensorFlow, one thread) "
        f"on scikit-learn's digits for {DIGITS_FULL_STEPS} optimizer steps; the curve is the "
        "training loss of every step. The last invocation ran for "
        f"{seconds / 60:.1f} min of wall time (a resumed collection trains only what is "
        "missing)."
    )
    command = shlex.join(["python", "bench/collect_digits_curves.py", *sys.argv[1:]])
    write_section(
        "digits-curves",
        collection_markdown(
            "Digits CNN learning curves (bench/collect_digits_curves.py)",
            table,
            what,
            command,
            FINAL_WINDOW,
        ),
    )


if __name__ == "__main__":
    main()
