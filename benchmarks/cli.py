"""CLI start-up: ``soilnet --help`` and every group's and command's ``--help``, each in a fresh process.

The command tree is read from the typer application (in this process, not timed); each help
command then runs as its own ``soilnet ... --help`` process (the installed console script), so
every figure includes the interpreter's start and every import the command pulls in. A command
takes the median of its runs; the figure is the slowest command's median wall time. The process
CPU time (user + system of the child) is printed beside it: on a busy machine the wall time
includes waiting for a core, the CPU time does not.

    python benchmarks/cli.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import typer.main

from soilnet.cli.app import app

TARGET_S = 1.0
SOILNET = Path(sys.executable).with_name("soilnet")


def help_commands() -> list[list[str]]:
    """Every path of the command tree (the root, each group, each command), as arguments before ``--help``."""
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_help(path: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``soilnet <path> --help`` process; fails on a non-zero exit or no usage line."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run([str(SOILNET), *path, "--help"], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0 or "Usage" not in done.stdout:
        raise SystemExit(f"soilnet {' '.join(path)} --help failed ({done.returncode}): {done.stderr[-500:]}")
    return wall, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="One run per command instead of three.")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    paths = help_commands()
    wall, cpu = {}, {}
    for path in paths:
        command = " ".join(["soilnet", *path, "--help"])
        times = [timed_help(path) for _ in range(runs)]
        wall[command] = statistics.median(w for w, _ in times)
        cpu[command] = statistics.median(c for _, c in times)
    for command, seconds in sorted(wall.items(), key=lambda item: -item[1])[:5]:
        print(f"{seconds:6.2f} s wall {cpu[command]:6.2f} s CPU  {command}")
    print(f"{len(paths)} help commands, {runs} run(s) each; slowest CPU time {max(cpu.values()):.2f} s")
    print(f"CLI_HELP: {max(wall.values()):.2f} s (target: <= {TARGET_S:.1f} s)")


if __name__ == "__main__":
    main()
