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

.PHONY: install test demo lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/install-system-packages.sh
	scripts/install-system-packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[tensorflow,aae,test]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

# The whole method on LineMOD's ape (procedural stand-in), quick profile; rerunning
# continues where it stopped. Report: runs/ape-quick/report/report.md
demo: install
	$(PY) examples/linemod/ape.py

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
