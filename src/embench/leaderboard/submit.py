"""Submit an eval log to a board: check it, build its entry, create the entry file once.

Safe under concurrency: two submissions of the same eval (the same log, a re-zipped copy, the
same file twice at the same moment) race for one file name derived from the eval id, created
exclusively, so exactly one entry is written and the other submission is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.leaderboard.boards import Board
from embench.leaderboard.entries import (
    build_entry,
    check_not_submitted,
    run_fields,
    write_entry,
)
from embench.leaderboard.logcheck import check_in_domain_log, check_log
from embench.run.layout import MANIFEST_FILE
from embench.run.reference import run_dir_of


@dataclass(frozen=True)
class Submitted:
    """An accepted submission: its entry and where it was written."""

    path: Path
    entry: dict[str, Any]


def submit_log(
    board: Board,
    log: Path,
    name: str | None = None,
    notes: str | None = None,
    run_dir: Path | None = None,
    in_domain_log: Path | None = None,
) -> Submitted:
    """Check ``log`` (and the in-domain log of the same model, when given) against ``board`` and
    add its entry, or raise a one-line EmbenchError."""
    if run_dir is not None and not (run_dir / MANIFEST_FILE).is_file():
        raise EmbenchError(f"--run {run_dir}: no manifest.json there")
    if name is not None and not name.strip():
        raise EmbenchError("--name must not be empty")
    checked = check_log(log, board)
    check_not_submitted(
        board,
        {"eval_id": checked.eval_id, "samples_sha256": checked.samples_sha256,
         "sha256": checked.sha256},
    )  # fmt: skip
    in_domain = None
    if in_domain_log is not None:
        run = run_dir or run_dir_of(checked.model)
        domain = run_fields(run).get("domain") if run is not None else None
        in_domain = check_in_domain_log(in_domain_log, domain)
    entry = build_entry(checked, board, name, notes, run_dir, in_domain)
    return Submitted(write_entry(board, entry, Path(log)), entry)
