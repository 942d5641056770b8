"""kt_predictive's error type: a search that cannot go on with what it was given.

Every error kt_predictive raises on purpose about its input (settings, search space, search
folder, saved state) is a :class:`SearchError`, a ``ValueError`` whose message names the
problem and the fix, so that a command-line tool prints that message and tells it from a bug
by its type. The subclasses are also the built-in type a caller may expect:

- :class:`FatalSearchError` is keras-tuner's ``FatalValueError`` too: raised while keras-tuner
  runs a trial, it stops the search (any other error only fails that trial);
- :class:`SearchNotFoundError` is a ``FileNotFoundError`` (a folder without a search);
- :class:`CorruptStateError` is a ``RuntimeError`` (a state file that cannot be read);
- :class:`StorageError` is an ``OSError`` (a folder that cannot be written);
- :class:`SearchLockedError` is a ``RuntimeError`` (another process runs the search).
"""

from __future__ import annotations

from keras_tuner import errors as tuner_errors


class SearchError(ValueError):
    """A setting, search space or search folder kt_predictive cannot work with."""


class FatalSearchError(SearchError, tuner_errors.FatalValueError):
    """A :class:`SearchError` that stops a running search (a keras-tuner ``FatalError``)."""


class SearchNotFoundError(FileNotFoundError, SearchError):
    """A folder that holds no search, or a file a search needs that does not exist."""


class CorruptStateError(SearchError, RuntimeError):
    """A state file exists but cannot be read."""


class StorageError(OSError, SearchError):
    """A folder or file that cannot be written (no space, no permission)."""


class SearchLockedError(SearchError, RuntimeError):
    """Another live process is running the search in this folder."""
