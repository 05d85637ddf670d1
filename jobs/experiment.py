"""Ray job entry point: ``python -m jobs.experiment soilnet-table --config jobs/configs/experiment-europe.yaml``."""

from soilnet.cli.experiment import experiment
from soilnet.cli.job_entry import run_job

if __name__ == "__main__":
    run_job(experiment)
