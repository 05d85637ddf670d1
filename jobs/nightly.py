"""Ray job entry point of the nightly regeneration: ``python -m jobs.nightly --config FILE``."""

from soilnet.cli.job_entry import run_job
from soilnet.cli.nightly import run

if __name__ == "__main__":
    run_job(run)
