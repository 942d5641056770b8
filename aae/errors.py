"""Telling mistakes in the input from bugs, for the command-line entry points.

This project raises ``ValueError``, ``KeyError``, ``OSError`` (``FileNotFoundError``) or
``CorruptStateError`` with a message that names the problem and the fix when the input is
wrong. A command prints that message as one line; the same exception types coming out of a
library, or out of an ordinary failed operation in our code, are bugs and keep their
traceback.
"""

from __future__ import annotations

import dis
import sys
from collections.abc import Callable
from pathlib import Path

import aae
import kt_predictive
from kt_predictive import CorruptStateError

#: Exceptions that our code raises on purpose for bad input.
INPUT_ERRORS = (OSError, ValueError, KeyError, CorruptStateError)
#: Exit status of a command stopped by a mistake in its input (argparse's usage errors too).
INPUT_ERROR_STATUS = 2
_PACKAGE_DIRS = tuple(Path(package.__file__).resolve().parent for package in (aae, kt_predictive))


def is_input_error(error: BaseException) -> bool:
    """Whether ``error`` was raised by a ``raise`` statement in this project's code."""
    if not isinstance(error, INPUT_ERRORS):
        return False
    innermost = error.__traceback__
    if innermost is None:
        return False
    while innermost.tb_next is not None:
        innermost = innermost.tb_next
    code = innermost.tb_frame.f_code
    source = Path(code.co_filename).resolve()
    if not any(source.is_relative_to(directory) for directory in _PACKAGE_DIRS):
        return False
    # `raise ValueError(...)` rather than, say, `mapping[key]` failing.
    return dis.opname[code.co_code[innermost.tb_lasti]] == "RAISE_VARARGS"


def error_message(error: BaseException) -> str:
    """The message of ``error`` (``str(KeyError("text"))`` would quote it)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def run_command(command: Callable[[], int], program: str) -> int:
    """Runs ``command``; a mistake in the input becomes one line on stderr and status 2."""
    try:
        return command()
    except INPUT_ERRORS as error:
        if not is_input_error(error):
            raise
        print(f"{program}: error: {error_message(error)}", file=sys.stderr)
        return INPUT_ERROR_STATUS
