"""Real learning curves of scikit-learn's MLPClassifier on a grid, collected once.

A model family the other problems do not have: a multilayer perceptron trained by
scikit-learn (not Keras), one ``partial_fit`` call (one pass over the training data in
minibatches) per step, on scikit-learn's bundled digits (no download): 75% to train, 25% to
validate, stratified. The curve is the *validation* log-loss after every epoch, so a
configuration that overfits gets worse late in training, as it would for a user choosing
by held-out loss. Every configuration of ``search.spaces.MLP_GRID`` is trained for
``MLP_EPOCHS`` epochs with each training seed; the table is ``bench/data/mlp_curves.npz``
(format: ``bench/search/tables.py``). A training whose weights or loss stop being finite
(sklearn raises, or the loss is inf/NaN) counts as diverged at that epoch. Writes section
``mlp-curves`` of bench/RESULTS.md.

    nice -n 19 python bench/collect_mlp_curves.py --seeds 1 2
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from results import write_section
from search.spaces import MLP_EPOCHS, MLP_GRID, MLP_TABLE
from search.tables import collect, collection_markdown
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

FINAL_WINDOW = 6


def data():
    digits = load_digits()
    return train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )


X_TRAIN, X_VAL, Y_TRAIN, Y_VAL = data()
CLASSES = np.unique(Y_TRAIN)


def train(values: dict, seed: int) -> list[float]:
    """One training: the validation log-loss after each of ``MLP_EPOCHS`` epochs."""
    model = MLPClassifier(
        hidden_layer_sizes=tuple(int(n) for n in values["hidden"].split("-")),
        activation=values["activation"],
        solver=values["solver"],
        learning_rate_init=values["learning_rate_init"],
        alpha=values["alpha"],
        batch_size=values["batch_size"],
        random_state=seed,
    )
    losses: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to diverging
        for _ in range(MLP_EPOCHS):
            try:
                model.partial_fit(X_TRAIN, Y_TRAIN, classes=CLASSES)
                loss = log_loss(Y_VAL, model.predict_proba(X_VAL), labels=CLASSES)
            except ValueError:  # "non-finite parameter weights" and the like
                loss = math.inf
            losses.append(float(loss) if math.isfinite(loss) else math.inf)
            if not math.isfinite(losses[-1]):
                break
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=MLP_TABLE)
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args()
    meta = {
        "model": "sklearn.neural_network.MLPClassifier, partial_fit per epoch",
        "data": "load_digits()/16, 75/25 stratified split, random_state 0",
        "curve": "validation log-loss after each epoch",
        "epochs": MLP_EPOCHS,
    }
    table, seconds = collect(
        args.out, MLP_GRID, MLP_EPOCHS, meta, args.seeds, train, args.max_minutes, save_every=20
    )
    what = (
        "scikit-learn's MLPClassifier on scikit-learn's digits, one partial_fit epoch per "
        f"step for {MLP_EPOCHS} epochs; the curve is the validation log-loss after every "
        "epoch (the budget of this problem counts epochs; an epoch is 22 minibatch steps at "
        f"batch size 64, 6 at 256). A first grid also had two hidden layers of 64: 28 of those "
        "96 configurations were collected (10 min of training) before they were dropped for "
        "time; their runs are not in the table. The last invocation ran for "
        f"{seconds / 60:.1f} min of wall time (a resumed collection trains only what is "
        "missing)."
    )
    command = shlex.join(["python", "bench/collect_mlp_curves.py", *sys.argv[1:]])
    write_section(
        "mlp-curves",
        collection_markdown(
            "MLP learning curves (bench/collect_mlp_curves.py)",
            table,
            what,
            command,
            FINAL_WINDOW,
        ),
    )


if __name__ == "__main__":
    main()
