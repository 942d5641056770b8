"""The grids and step budgets of the replayed problems (shared by the collection scripts and
the benchmark, so the table and the searches agree)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"

#: A subset of examples/digits_cnn.py's space (432 configurations): 192 configurations, all
#: collected in about 10 minutes on one core (about 3 s per 300-step training).
DIGITS_GRID = {
    "filters": [8, 16, 32],
    "kernel": [2, 3],
    "units": [32, 128],
    "optimizer": ["adam", "sgd"],
    "lr": [0.1, 0.01, 0.001, 0.0001],
    "batch_size": [16, 64],
}
DIGITS_FULL_STEPS = 300
DIGITS_TABLE = DATA / "digits_curves.npz"

#: scikit-learn's MLPClassifier on scikit-learn's digits, one partial_fit epoch per step.
#: Two hidden layers of 64 were in the first grid; at 60 epochs with minibatches of 64 they
#: took over 20 s per training on the shared machine, so they were dropped (their runs,
#: collected before, are left out of the table).
MLP_GRID = {
    "hidden": ["32", "128"],
    "activation": ["relu", "tanh"],
    "solver": ["adam", "sgd"],
    "learning_rate_init": [0.1, 0.01, 0.001, 0.0001],
    "alpha": [1e-5, 1e-3, 1e-1],
    "batch_size": [64, 256],
}
MLP_EPOCHS = 60
MLP_TABLE = DATA / "mlp_curves.npz"
