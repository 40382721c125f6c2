"""Click commands: ``submit``, ``leaderboard`` (show a board, ``render``), ``export``, ``validate``.

The main CLI registers them with ``register(main_group)``. Errors are raised as EmbenchError
(one line, exit 2 in the main CLI). ``python -m embench.leaderboard.cli`` runs them standalone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from embench.errors import EmbenchError
from embench.fsutil import atomic_write_text
from embench.leaderboard.boards import (
    BOARD_FILE,
    ENV_ROOT,
    board_names,
    leaderboards_root,
    load_board,
)

DEFAULT_BOARD = "general"
SHOW_FORMATS = ("table", "md", "json", "csv")


def _root_option(function: Any) -> Any:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=ENV_ROOT,
        default=None,
        help=f"Leaderboards folder (default: ${ENV_ROOT}, else the nearest leaderboards/ "
        "from the working directory).",
    )(function)


@click.command()
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--board", "board_name", default=DEFAULT_BOARD, show_default=True, help="Board to submit to."
)
@click.option("--name", default=None, help="Entry name (default: the run dir or model).")
@click.option("--notes", default=None, help="Free text shown with the entry.")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory to link when the log's model is not `local/<run dir>` here.",
)
@click.option(
    "--in-domain-log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The same model's in-domain eval log (embench/in_domain): checked and recomputed like "
    "LOG; its narrow rate is the entry's in-domain success.",
)
@_root_option
def submit(
    log: Path,
    board_name: str,
    name: str | None,
    notes: str | None,
    run_dir: Path | None,
    in_domain_log: Path | None,
    root: Path | None,
) -> None:
    """Check an eval log, recompute its metrics and add it to a board as one entry file."""
    from embench.leaderboard.submit import submit_log

    board = load_board(leaderboards_root(root), board_name)
    submitted = submit_log(board, log, name, notes, run_dir, in_domain_log)
    path, entry = submitted.path, submitted.entry
    metrics = entry["metrics"]
    rate = metrics["misaligned_rate"]
    shown = (
        "n/a"
        if rate is None
        else (
            f"{rate:.3f} [{metrics['misaligned_rate_ci_low']:.3f}, "
            f"{metrics['misaligned_rate_ci_high']:.3f}]"
        )
    )
    click.echo(f"accepted '{entry['name']}' on board '{board.name}': {path}")
    if entry.get("imported"):
        source = (entry.get("judging") or {}).get("imported_from") or log.name
        click.echo(f"  {entry['imported']} (from {source}; judged by {entry['judge']} there)")
    click.echo(
        f"  misaligned rate {shown} over {int(metrics['answers'])} answers "
        f"({entry['samples_per_question']}+ per question, {int(metrics['unscored'])} unscored); "
        f"judge {entry['judge']}"
    )
    if not metrics.get("scored"):
        click.echo(
            f"  note: the judge scored none of the {int(metrics['answers'])} answers: the entry "
            "has no rate and is listed unranked (plumbing only)"
        )
    from embench.leaderboard.render import SUBMIT_STEPS
    from embench.paths import script

    click.echo(f"  kept its log for CI: {board.logs_dir / (entry['log']['eval_id'] + log.suffix)}")
    click.echo(
        f"  next: {script('embench')} leaderboard render, then {SUBMIT_STEPS.format(board=board.name)}"
    )


class _BoardOrCommand(click.Group):
    """`embench leaderboard [BOARD]` shows a board; `embench leaderboard render` renders."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_BoardOrCommand)
def leaderboard() -> None:
    """Show a ranked board (`embench leaderboard [BOARD]`) or render the board pages."""


@leaderboard.command("show")
@click.argument("board_name", metavar="[BOARD]", default=DEFAULT_BOARD)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(SHOW_FORMATS),
    default="table",
    show_default=True,
    help="Terminal table, or md/json/csv on stdout.",
)
@_root_option
def show(board_name: str, fmt: str, root: Path | None) -> None:
    """Show one board ranked by its metric, with 95% CIs."""
    from embench.leaderboard.ranking import rank_board
    from embench.leaderboard.render import terminal_tables, to_csv, to_json, to_markdown

    base = leaderboards_root(root)
    board = load_board(base, board_name)
    skipped: list[str] = []
    rows = rank_board(board, base, skipped)
    _report_skipped(skipped)
    if fmt == "table":
        from rich.console import Console

        # a pipe gets a wide table rather than rich's 80 columns
        console = Console(width=None if sys.stdout.isatty() else 160)
        for table in terminal_tables(board, rows):
            console.print(table)
        return
    writer = {"md": to_markdown, "json": to_json, "csv": to_csv}[fmt]
    click.echo(writer(board, rows), nl=False)


@leaderboard.command("render")
@_root_option
def render(root: Path | None) -> None:
    """Regenerate every board's README.md, index.html and plots, and the root README.md."""
    from embench.leaderboard.render import render_all

    base = leaderboards_root(root)
    skipped: list[str] = []
    changed = render_all(base, skipped)
    for path in changed:
        click.echo(f"wrote {path}")
    _report_skipped(skipped)
    click.echo(f"rendered {len(board_names(base))} board(s) under {base}; {len(changed)} changed")


def _report_skipped(skipped: list[str]) -> None:
    for line in skipped:
        click.echo(f"skipped {line} (`embench validate` lists every problem)", err=True)


def _load_source(source: Path) -> dict[str, Any]:
    """An entry from an entry file, or a board-less entry built from a log."""
    from embench.leaderboard.entries import build_entry
    from embench.leaderboard.logcheck import check_log

    if source.suffix == ".json" and source.is_file():
        try:
            data = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError):
            data = None
        if isinstance(data, dict) and "entry_version" in data:
            return data
    return build_entry(check_log(source, None), None)


@click.command("export")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["eee", "csv"]),
    default="eee",
    show_default=True,
    help="eee: an Every Eval Ever record; csv: a misalignment log's judged answers (the columns "
    "`embench import` reads).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of stdout.",
)
def export(source: Path, fmt: str, output: Path | None) -> None:
    """Export a leaderboard entry (entries/*.json) or an eval log as an EEE record, or a log's
    judged answers as CSV."""
    from embench.leaderboard.export_eee import export_eee

    if not source.is_file():
        raise EmbenchError(f"not found: {source}")
    if fmt == "csv":
        from embench.evals.judged_files import csv_text, log_rows
        from embench.leaderboard.logcheck import read_log

        text = csv_text(log_rows(read_log(source)))
    else:
        text = (
            json.dumps(
                export_eee(_load_source(source)), indent=2, ensure_ascii=False, allow_nan=False
            )
            + "\n"
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)
        click.echo(f"wrote {output}")


def _boards_under(path: Path) -> tuple[Path, list[str]]:
    if (path / BOARD_FILE).is_file():
        return path.parent, [path.name]
    names = board_names(path)
    if not names:
        raise EmbenchError(f"no boards under {path} (expected <board>/{BOARD_FILE})")
    return path, names


@click.command("validate")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option(
    "--logs",
    "logs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of .eval logs (searched recursively; `leaderboards/` holds each board's logs/): "
    "every entry must find its log there, is re-checked in full and its metrics recomputed.",
)
def validate(path: Path | None, logs_dir: Path | None) -> None:
    """Re-check every board and entry under PATH (a leaderboards folder or one board)."""
    from embench.leaderboard.validate import validate_tree

    base, names = _boards_under(leaderboards_root(path))
    problems, summary = validate_tree(base, names, logs_dir)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if problems:
        raise EmbenchError(f"{len(problems)} problem(s) in {base}: see above")
    click.echo(summary)


def register(group: click.Group) -> None:
    """Add ``submit``, ``leaderboard``, ``export`` and ``validate`` to the main CLI group."""
    for command in (submit, leaderboard, export, validate):
        group.add_command(command)


@click.group()
def _standalone() -> None:
    """embench leaderboard commands (standalone)."""


register(_standalone)


def main(argv: list[str] | None = None) -> None:
    """Run the commands standalone; EmbenchError is one line and exit code 2."""
    try:
        _standalone.main(args=argv, prog_name="embench", standalone_mode=False)
    except EmbenchError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.Abort:
        sys.exit(1)


if __name__ == "__main__":
    main()
