"""Ray job entry point of the demo flow: ``python -m jobs.demo --config jobs/configs/demo.yaml``."""

from soilnet.cli.app import demo
from soilnet.cli.job_entry import run_job

if __name__ == "__main__":
    run_job(demo)
