# Two commands matter: `make demo` runs the main job, `make test` runs the
# tests. Both install what they need on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# pyrender renders offscreen through EGL; Keras runs on TensorFlow unless the
# caller chose another backend.
export PYOPENGL_PLATFORM ?= egl
export KERAS_BACKEND ?= tensorflow
# Fewer of TensorFlow's start-up messages (some come through anyway).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test demo lint clean gpu-wheels

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/install-system-packages.sh
	scripts/install-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[tensorflow,jax,aae,test]'
	touch $(STAMP)

# Everything on TensorFlow, then the JAX leg: the tests marked `jax` (network, loss,
# hypermodel, callbacks, checkpoints, a tiny search, the GPU benchmark's smoke mode) again
# on the GPU machine's backend (its time: bench/RESULTS.md, section jax-leg).
# TEST_WORKERS pytest processes (pytest-xdist) share the test files, each file whole in
# one process so that its module fixtures are built once, the slowest files first
# (tests/conftest.py orders them; --no-loadscope-reorder keeps that order, which xdist would
# otherwise replace by the number of tests per file); most of a test's time is one
# Python thread (tracing, rendering, a subprocess starting TensorFlow), so two processes
# use both cores of a 2-core CI machine (shared machine: TensorFlow leg 1108 -> 689 s).
# TEST_WORKERS=0 runs them in make's pytest process.
TEST_WORKERS ?= 2
PYTEST_WORKERS := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: install
	$(PY) -m pytest -q $(PYTEST_WORKERS)
	KERAS_BACKEND=jax $(PY) -m pytest -q -m jax $(PYTEST_WORKERS)

# The whole method on LineMOD's real ape (the mesh shipped in aae/data/objects/lmo), quick profile; rerunning
# continues where it stopped. Report: runs/ape-quick/report/report.md; then the README's
# demo block and docs/demo_*.png are rewritten from that run's summary.json.
demo: install
	$(PY) examples/linemod/search.py ape
	$(PY) -m aae.report runs/ape-quick/report --readme README.md

# The wheels bench/gpu_throughput.py needs on the GPU machine, which has JAX but neither
# TensorFlow nor internet: Keras and its dependencies, for that machine's Python.
# There: pip install --no-index --find-links dist/gpu-wheels keras (README, Benchmarks).
GPU_PYTHON ?= 3.11
gpu-wheels: install
	$(PY) -m pip download -q --only-binary=:all: --python-version $(GPU_PYTHON) \
		--platform manylinux2014_x86_64 -d dist/gpu-wheels 'keras>=3.15.1,<4'

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
