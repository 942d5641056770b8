"""kt_predictive's error type: a search that cannot go on with what it was given.

Every error kt_predictive raises on purpose about its input (settings, search space, search
folder, reports) is a :class:`SearchError`, with a message that names the problem and the
fix, so a command-line tool can print that message and tell it from a bug by its type. Raised
while keras-tuner runs a search, it is a :class:`FatalSearchError`, which keras-tuner's loop
lets through (any other error in a trial only fails that trial).
"""

from __future__ import annotations

from keras_tuner import errors as tuner_errors


class SearchError(ValueError):
    """A setting, search space or search folder kt_predictive cannot work with."""


class FatalSearchError(SearchError, tuner_errors.FatalValueError):
    """A :class:`SearchError` that stops a running search (a keras-tuner ``FatalError``)."""
