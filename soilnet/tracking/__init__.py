"""MLflow tracking: run logging from rank 0, flattened parameters, artifacts, the model registry."""
