"""The search space as finite value grids.

The method allocates a probability to every value of every hyperparameter, so each
hyperparameter must have a finite list of values. keras-tuner's Choice, Boolean and Fixed
have one; Int and Float have one when they declare a ``step`` (keras-tuner gives a linear
Int ``step=1`` by default).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import keras_tuner

from kt_predictive.errors import FatalSearchError, SearchError

Value = bool | int | float | str

# Numeric grids whose largest value is at least this many times the smallest are encoded on
# a log scale for the predictor (learning rates 2e-5..2e-2), others linearly (filter counts).
LOG_SCALE_RATIO = 10.0


@dataclass(frozen=True)
class ValueGrid:
    """The finite list of values one hyperparameter can take.

    Attributes:
        name: The hyperparameter's name.
        values: Its values, as plain Python scalars, in declaration order.
        kind: ``"categorical"`` (strings), ``"boolean"`` or ``"numeric"``.
        log_scale: Whether the predictor encodes this numeric hyperparameter as log10.
    """

    name: str
    values: tuple[Value, ...]
    kind: str
    log_scale: bool = False

    def __len__(self) -> int:
        return len(self.values)

    def index(self, value: Value) -> int:
        """Position of ``value`` in the grid (floats match within rounding error)."""
        # Exact values (the usual case: values the oracle itself drew) by lookup; the
        # allocation asks this for every record and hyperparameter after every trial.
        exact = _positions(self).get((type(value), value))
        if exact is not None:
            return exact
        for i, candidate in enumerate(self.values):
            if candidate == value:
                return i
            if (
                self.kind == "numeric"
                and isinstance(value, int | float)
                and math.isclose(candidate, value, rel_tol=1e-9, abs_tol=1e-12)
            ):
                return i
        raise SearchError(
            f"value {value!r} is not in the grid of hyperparameter {self.name!r}: "
            f"{list(self.values)}"
        )


@functools.lru_cache(maxsize=1024)
def _positions(grid: ValueGrid) -> dict[tuple[type, Value], int]:
    """``{(type, value): position}`` of a grid's values (True and 1 kept apart)."""
    return {(type(value), value): i for i, value in reversed(list(enumerate(grid.values)))}


def _plain(value: object) -> Value:
    """Converts numpy scalars to Python ones so grids stay JSON-serialisable."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    raise FatalSearchError(
        f"hyperparameter value {value!r} of type {type(value).__name__} cannot be stored; "
        "use bool, int, float or str values"
    )


def grid_of(hp: keras_tuner.engine.hyperparameters.HyperParameter) -> ValueGrid:
    """Returns the value grid of one keras-tuner hyperparameter.

    Raises:
        FatalSearchError: for an Int or Float without ``step``.
    """
    hp_types = keras_tuner.engine.hyperparameters
    if isinstance(hp, hp_types.Boolean):
        return ValueGrid(hp.name, (False, True), "boolean")
    if isinstance(hp, hp_types.Fixed):
        value = _plain(hp.value)
        kind = "categorical" if isinstance(value, str) else "numeric"
        kind = "boolean" if isinstance(value, bool) else kind
        return ValueGrid(hp.name, (value,), kind)
    if isinstance(hp, hp_types.Choice):
        values = tuple(_plain(v) for v in hp.values)
        if all(isinstance(v, bool) for v in values):
            return ValueGrid(hp.name, values, "boolean")
        if any(isinstance(v, str) for v in values):
            return ValueGrid(hp.name, values, "categorical")
        return ValueGrid(hp.name, values, "numeric", _spans_decades(values))
    if isinstance(hp, hp_types.Int | hp_types.Float):
        if hp.step is None:
            kind = type(hp).__name__
            article = "an" if kind == "Int" else "a"
            raise FatalSearchError(
                f"hyperparameter {hp.name!r} is {article} {kind} without a step, so it has no "
                "finite "
                "list of values to allocate probabilities to. Give it a grid: "
                f"hp.{kind}({hp.name!r}, {hp.min_value}, {hp.max_value}, step=..., "
                f"sampling={hp.sampling!r}) or hp.Choice({hp.name!r}, [v1, v2, ...])"
            )
        values = tuple(_plain(v) for v in hp.values)
        return ValueGrid(hp.name, values, "numeric", _spans_decades(values))
    raise FatalSearchError(
        f"hyperparameter {hp.name!r} has unsupported type {type(hp).__name__}; "
        "use Choice, Boolean, Fixed, or Int/Float with a step"
    )


def _spans_decades(values: tuple[Value, ...]) -> bool:
    low, high = min(values), max(values)
    return low > 0 and high / low >= LOG_SCALE_RATIO


def value_grids(hyperparameters: keras_tuner.HyperParameters) -> list[ValueGrid]:
    """The grids of every hyperparameter of a search space, in declaration order.

    Raises:
        FatalSearchError: for an empty space or a hyperparameter without
            a finite grid.
    """
    if not hyperparameters.space:
        raise FatalSearchError(
            "the search space is empty: declare hyperparameters in the hypermodel's build() "
            "(hp.Choice, hp.Int(..., step=...), ...) or pass hyperparameters= to the oracle"
        )
    return [grid_of(hp) for hp in hyperparameters.space]


def space_size(grids: list[ValueGrid]) -> int:
    """Number of configurations of the grids (ignoring conditional scopes)."""
    return math.prod(len(grid) for grid in grids)


def check_values_kept(known: list[ValueGrid], declared: list[ValueGrid]) -> None:
    """Refuses a space that gives a known hyperparameter other values.

    keras-tuner keeps an existing hyperparameter's old values silently; a search whose records
    and probabilities refer to the old grid cannot continue on a new one.
    """
    by_name = {g.name: g for g in known}
    incoming = {g.name: g for g in declared if g.name in by_name and g != by_name[g.name]}
    if incoming:
        raise FatalSearchError(
            "the search space changed: "
            + describe_change(known, [incoming.get(n, by_name[n]) for n in by_name])
            + "; continue with the same space, or start over with a new project_name or "
            "overwrite=True"
        )


def check_settled(known: list[ValueGrid], grids: list[ValueGrid]) -> None:
    """Refuses a space that changed after phase 1.

    Hyperparameters declared in HyperModel.fit() appear only once a trial ran (keras-tuner's
    own behaviour); that is fine while phase 1 samples uniformly, but the predictor and the
    probabilities need a settled space.
    """
    if grids != known:
        raise FatalSearchError(
            "the search space changed after phase 1: "
            + describe_change(known, grids)
            + "; declare every hyperparameter before the first trial ends, or start "
            "over with a new project_name or overwrite=True"
        )


def describe_change(before, after) -> str:
    """Which hyperparameters or values differ between two spaces (grids or {name: values})."""

    def as_dict(grids):
        return grids if isinstance(grids, dict) else {g.name: list(g.values) for g in grids}

    before, after = as_dict(before), as_dict(after)
    parts = [f"{name} added" for name in after if name not in before]
    parts += [f"{name} removed" for name in before if name not in after]
    parts += [
        f"{name} values {before[name]} -> {after[name]}"
        for name in before
        if name in after and list(before[name]) != list(after[name])
    ]
    return ", ".join(parts) or "order of hyperparameters changed"
