"""Ray job entry point of the map: ``python -m jobs.map --config jobs/configs/map.yaml``."""

from soilnet.cli.job_entry import run_job
from soilnet.cli.map import run

if __name__ == "__main__":
    run_job(run)
