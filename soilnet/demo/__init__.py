"""The demo flow that `soilnet demo` / `make demo` runs: data stage, training, map stage scored against the truth."""
