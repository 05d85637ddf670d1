"""The ``soilnet`` command line: one subcommand per job."""

from soilnet.cli.app import app, main

__all__ = ["app", "main"]
