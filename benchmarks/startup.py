"""Start-up time of `embench` commands: this checkout against an earlier commit, in one run.

Each command runs in a fresh interpreter (as the console script does) and exits before any model
is loaded, so the time is import + parsing + the first check. The earlier commit is exported with
``git archive`` into a temporary folder and run from there the same way. Prints the median wall
time per command for both, their ratio, and the CPU.

    .venv/bin/python benchmarks/startup.py [--before 3338cbd] [--repeat 3]

3338cbd is main before the start-up work (issue 15 §8). Other processes on the machine disturb
the figures: run it on an idle machine and read the ratios, not the last decimal.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embench.hardware import describe_cpu

ROOT = Path(__file__).resolve().parents[1]
#: Commands that stop before any model loads on both revisions (the earlier one checked values
#: such as --max-steps 0 only after loading, so those are left out).
COMMANDS: list[list[str]] = [
    ["--version"],
    ["--help"],
    ["train", "--help"],
    ["train", "--trainer", "nope"],
    ["train", "--domain", "nope"],
    ["train", "--set", "colour=red"],
    ["leaderboard", "--help"],
]
#: Value errors the earlier revision found only after loading the model (it then trained): timed
#: on this checkout only.
NOW_ONLY: list[list[str]] = [["train", "--max-steps", "0"], ["train", "--set", "max_steps=2.7"]]
RUNNER = "import sys; from embench.cli import main; main(sys.argv[1:], prog_name='embench')"


def time_command(root: Path, args: list[str], repeat: int) -> float:
    """Median seconds of ``embench <args>`` run from ``root`` (its src/ on the path)."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", RUNNER, *args],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=600,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def export(ref: str, into: Path) -> Path:
    """The tree of commit ``ref`` as a plain folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="3338cbd", help="earlier commit to compare with")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    args = parser.parse_args()

    print(
        f"CPU: {describe_cpu()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}; median of {args.repeat}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        before = export(args.before, Path(tmp))
        print(f"{'command':<34}{'before ' + args.before:>16}{'now':>10}{'ratio':>8}")
        for command in COMMANDS:
            old = time_command(before, command, args.repeat)
            new = time_command(ROOT, command, args.repeat)
            label = "embench " + " ".join(command)
            print(f"{label:<34}{old:>14.2f} s{new:>8.2f} s{old / new:>7.1f}x")
        for command in NOW_ONLY:
            new = time_command(ROOT, command, args.repeat)
            print(f"{'embench ' + ' '.join(command):<34}{'(loads, trains)':>16}{new:>8.2f} s")


if __name__ == "__main__":
    main()
