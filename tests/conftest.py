"""Test-wide settings: chosen before any test imports Keras or pyrender."""

import os

# Keras reads its backend and pyrender its OpenGL platform at import time.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
