"""aae's error type, and how the command-line entry points report mistakes in the input.

Every error aae raises on purpose about its input (a mesh, a dataset folder, a setting, a
network or codebook file) is an :class:`AAEError`, a ``ValueError`` whose message names the
problem and the fix; kt_predictive's are :class:`kt_predictive.SearchError`. A command prints
such an error as one line and exits with status 2; anything else is a bug and keeps its
traceback. The subclasses are also the built-in type a caller may expect: an unknown name is
a ``KeyError``, a missing file a ``FileNotFoundError``, a folder already in use a
``FileExistsError``.

This module imports nothing heavy: settings modules raise these errors without Keras.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class AAEError(ValueError):
    """An input aae cannot work with (mesh, dataset, setting, network or codebook)."""


class UnknownNameError(AAEError, KeyError):
    """An object, profile, config, setting or id that does not exist."""


class MissingFileError(FileNotFoundError, AAEError):
    """An input file or folder that does not exist."""


class ExistingFileError(FileExistsError, AAEError):
    """An output folder that already holds something aae would overwrite."""


#: Exit status of a command stopped by a mistake in its input (argparse's usage errors too).
INPUT_ERROR_STATUS = 2


def error_message(error: BaseException) -> str:
    """The message of ``error`` (``str(KeyError("text"))`` would quote it)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def run_command(command: Callable[[], int], program: str) -> int:
    """Runs ``command``; a mistake in the input becomes one line on stderr and status 2."""
    from kt_predictive import SearchError  # the commands use kt_predictive anyway

    try:
        return command()
    except (AAEError, SearchError) as error:
        print(f"{program}: error: {error_message(error)}", file=sys.stderr)
        return INPUT_ERROR_STATUS
