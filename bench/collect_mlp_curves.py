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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_section
from search.mlp import make_model, train_epoch
from search.spaces import MLP_EPOCHS, MLP_GRID, MLP_TABLE
from search.tables import collect, collection_markdown

FINAL_WINDOW = 6
#: What the table holds; a table collected with other settings is refused.
META = {
    "model": "sklearn.neural_network.MLPClassifier, partial_fit per epoch",
    "data": "load_digits()/16, 75/25 stratified split, random_state 0",
    "curve": "validation log-loss after each epoch",
    "epochs": MLP_EPOCHS,
}


def train(values: dict, seed: int) -> list[float]:
    """One training: the validation log-loss after each of ``MLP_EPOCHS`` epochs."""
    model = make_model(values, seed)
    losses: list[float] = []
    for _ in range(MLP_EPOCHS):
        losses.append(train_epoch(model))
        if not math.isfinite(losses[-1]):
            break
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=MLP_TABLE)
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args()
    table, seconds = collect(
        args.out, MLP_GRID, MLP_EPOCHS, META, args.seeds, train, args.max_minutes, save_every=20
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
