"""The runnable examples in kt_predictive's docstrings: each prints what its docstring says."""

import doctest
import importlib
import pkgutil

import pytest

import kt_predictive

pytestmark = pytest.mark.jax

SUBMODULES = pkgutil.iter_modules(kt_predictive.__path__, "kt_predictive.")
MODULES = ["kt_predictive", *sorted(m.name for m in SUBMODULES)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
