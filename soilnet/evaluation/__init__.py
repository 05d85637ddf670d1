"""Evaluation: regression metrics, spatial cross-validation folds, tree baselines and plots."""
