"""Pose from a trained encoder: the codebook of rendered views (``codebook``), the ADD/ADI
metrics (``metrics``) and the evaluation on a BOP test set (``evaluate``)."""
