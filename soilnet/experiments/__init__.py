"""`soilnet experiment`: the papers' tables as one command (arms on shared points, cubes and folds)."""
