"""Thin entry points that a Ray job runs: ``python -m jobs.<name> --config FILE``."""
