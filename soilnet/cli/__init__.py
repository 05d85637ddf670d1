"""The ``soilnet`` command line: one subcommand per job."""

from soilnet.cli.main import app, main

__all__ = ["app", "main"]
