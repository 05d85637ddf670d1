"""Ray job entry point: ``python -m jobs.evaluate --config jobs/configs/train-europe.yaml``."""

from soilnet.cli.job_entry import run_job
from soilnet.cli.train import evaluate

if __name__ == "__main__":
    run_job(evaluate)
