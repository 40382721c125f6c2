"""The grid as a table: live while it runs, and afterwards from the cells' records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from embench.experiments.evaluate import read_json
from embench.experiments.runner import CELL_FILE, GridState, read_experiment

STYLES = {
    "done": "green",
    "running": "yellow",
    "failed": "red",
    "interrupted": "magenta",
    "blocked": "red",
    "pending": "dim",
}


def grid_table(rows: list[dict[str, Any]], title: str) -> Table:
    """One row per cell: label, status, stage, time, error."""
    table = Table(title=escape(title), title_justify="left")
    for column in ("cell", "status", "stage", "seconds", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = str(row.get("status") or "pending")
        seconds = row.get("seconds")
        table.add_row(  # Text, not markup: labels and errors are shown as typed
            Text(str(row.get("label", ""))),
            Text(status, style=STYLES.get(status, "")),
            Text(str(row.get("stage") or "")),
            "" if seconds is None else f"{seconds:.0f}",
            Text(str(row.get("error") or "")),
        )
    return table


def live_rows(state: GridState) -> list[dict[str, Any]]:
    """The rows of a running grid."""
    return list(state.rows.values())


def status_rows(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(experiment record, one row per baseline and cell) read from an experiment folder."""
    experiment = read_experiment(out)
    rows = []
    for item in experiment.get("baselines", []):
        record = read_json(out / "baselines" / item["folder"] / CELL_FILE) or {}
        rows.append({"label": f"base {item['model']}", **record})
    for item in experiment.get("cells", []):
        record = read_json(out / "cells" / item["folder"] / CELL_FILE) or {}
        rows.append({**record, "label": item["label"]})
    return experiment, rows
