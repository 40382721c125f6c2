"""Click commands: ``experiment`` (run a grid, ``status``), ``report`` and ``rescore``.

The main CLI adds them with ``register(main_group)``; errors are EmbenchError (one line, exit 2).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from embench.errors import EmbenchError


class _ConfigOrCommand(click.Group):
    """`embench experiment CONFIG` runs a grid; `embench experiment status DIR` shows one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ConfigOrCommand)
def experiment() -> None:
    """Run an experiment grid (`embench experiment CONFIG.yaml`) or show one (`status DIR`).

    A grid trains every trainer x domain x reward x mitigation x seed (x base model) cell,
    evaluates it (general and in-domain) at its final and intermediate checkpoints, optionally
    submits it, and resumes where it stopped when run again. See configs/experiments/.
    """


@experiment.command("run")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Experiment folder (default: the config's output).",
)
@click.option("--estimate", is_flag=True, help="Print the cost of the grid and run nothing.")
@click.option("--plain", is_flag=True, help="No live table (log lines instead).")
def run_command(config_file: Path, output: Path | None, estimate: bool, plain: bool) -> None:
    """Run (or resume) the grid of CONFIG_FILE."""
    from embench.experiments.config import load_experiment

    config = load_experiment(config_file)
    if estimate:
        from embench.experiments.estimate import estimate_cost, format_estimate
        from embench.experiments.rates import measured_rates

        # the config's own `cost` assumptions win: read earlier runs and logs only without them
        measured = None if config.raw.get("cost") else measured_rates(output or Path(config.output))
        click.echo(format_estimate(estimate_cost(config, measured)))
        return
    from embench.experiments.runner import GridState, run_experiment

    out = output or Path(config.output)
    command = (
        shlex.join(["embench", "experiment", *sys.argv[2:]])
        if sys.argv[1:2] == ["experiment"]
        else f"embench experiment {config_file}"
    )
    state = GridState()
    if plain or not sys.stdout.isatty():
        state.on_change = _plain_printer()
        counts = run_experiment(config, out, command, state)
    else:
        from rich.live import Live

        from embench.experiments.view import grid_table, live_rows

        with Live(grid_table([], config.name), refresh_per_second=2) as live:
            state.on_change = lambda s: live.update(grid_table(live_rows(s), config.name))
            counts = run_experiment(config, out, command, state)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"experiment {config.name}: {summary}; see `embench experiment status {out}`")
    click.echo(f"report: embench report {out}")
    if counts.get("failed") or counts.get("blocked"):
        sys.exit(1)


def _plain_printer():
    last: dict[str, tuple] = {}

    def show(state) -> None:
        for key, row in state.rows.items():
            now = (row.get("status"), row.get("stage"), row.get("error"))
            if last.get(key) != now and now[0] != "pending":
                last[key] = now
                note = f"  ({now[2]})" if now[2] else ""
                click.echo(f"[{row.get('label', key)}] {now[0]}: {now[1] or ''}{note}", err=True)

    return show


@experiment.command("status")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def status_command(out: Path) -> None:
    """Show every cell of an experiment folder: status, stage, time, error."""
    from rich.console import Console

    from embench.experiments.view import grid_table, status_rows

    experiment_record, rows = status_rows(out)
    Console().print(grid_table(rows, f"{experiment_record['name']} ({out})"))


@click.command()
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--judge", required=True, help="Inspect model to re-score with, e.g. openai/gpt-4o.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the re-scored log goes (default: beside LOG, .judge-<model>.eval).",
)
@click.option(
    "--min-mass",
    type=float,
    default=None,
    help="The judge's minimum probability on numbers for a score, as -T min_mass is for the "
    "eval (default: the log's own, else 0.25; 0 lets a tiny local judge show numbers, for "
    "plumbing only).",
)
def rescore(log: Path, judge: str, output: Path | None, min_mass: float | None) -> None:
    """Re-score LOG's answers with another judge (no regeneration) and compare the judges."""
    import json

    from embench.experiments.agreement import agreement_record, compare_logs, format_agreement
    from embench.experiments.evaluate import rescore as rescore_log
    from embench.fsutil import atomic_write_text

    summary = rescore_log(log, judge, output, min_mass)
    click.echo(f"re-scored {summary['samples']} answers with {judge}: {summary['log']}")
    rescored = Path(summary["log"])
    agreement = compare_logs(log, rescored)
    if agreement is not None:
        click.echo(format_agreement(agreement))
        written = rescored.with_name(f"{rescored.stem}.agreement.json")
        record = agreement_record(agreement, log, rescored)
        atomic_write_text(written, json.dumps(record, indent=2, allow_nan=False) + "\n")
        click.echo(f"agreement written to {written}")


def register(group: click.Group) -> None:
    """Add ``experiment`` and ``rescore`` (and ``report`` when present) to the main CLI group."""
    for command in (experiment, rescore):
        group.add_command(command)
    try:
        from embench.experiments.report import report
    except ImportError:
        return
    group.add_command(report)


def main(argv: list[str] | None = None) -> None:
    """Run the commands standalone; EmbenchError is one line and exit code 2."""
    group = click.Group(commands={"experiment": experiment, "rescore": rescore})
    try:
        group.main(argv, standalone_mode=False)
    except EmbenchError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
