"""Ray job entry point of the Earth Engine acquisition: ``python -m jobs.acquire --config FILE``."""

from soilnet.cli.acquire import run
from soilnet.cli.job_entry import run_job

if __name__ == "__main__":
    run_job(run)
