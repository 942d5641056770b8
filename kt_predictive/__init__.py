"""Predictor-guided hyperparameter search as a keras-tuner plugin."""
