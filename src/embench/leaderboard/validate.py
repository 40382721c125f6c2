"""Re-check a leaderboards tree: boards, every entry, and (given the logs) every metric.

Meant for the CI of a repository that accepts submissions as pull requests: a hand-edited
entry, an entry filed under the wrong board, the same eval twice (by eval id, sample content or file
hash), an entry whose log is missing or no longer gives it, or a stale board config fails. With
``--logs`` every entry must find its log there (by content hash; ``submit`` keeps it in the
board's ``logs/``); without, only the entries are checked, and the summary says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.leaderboard.boards import Board, load_board
from embench.leaderboard.entries import (
    ENTRY_VERSION,
    StoredEntry,
    check_entry,
    load_entries,
    same_eval,
)
from embench.leaderboard.logcheck import (
    TOLERANCE,
    check_in_domain_log,
    check_log,
    metric_names,
    sha256_file,
)
from embench.leaderboard.render import check_columns
from embench.materials import REGISTRY, is_fetched
from embench.questions import load_question_set

LOG_SUFFIXES = (".eval", ".json")


def _logs_by_hash(logs_dir: Path | None) -> dict[str, Path]:
    if logs_dir is None:
        return {}
    if not logs_dir.is_dir():
        raise EmbenchError(f"--logs {logs_dir}: not a folder")
    return {sha256_file(p): p for p in sorted(logs_dir.rglob("*")) if p.suffix in LOG_SUFFIXES}


def _differs(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    if isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b):
        return False
    return abs(float(a) - float(b)) > TOLERANCE


def _recheck(stored: StoredEntry, board: Board, log: Path) -> list[str]:
    """Re-run every submission check on the entry's log and compare what it stored."""
    where = stored.path.name
    try:
        checked = check_log(log, board)
    except EmbenchError as error:
        return [f"{where}: its log {log} no longer passes: {error}"]
    data = stored.data
    problems = []
    claimed = set(data["metrics"]) if isinstance(data.get("metrics"), dict) else set()
    for name in sorted(set(metric_names()) | set(checked.metrics) | claimed):
        if _differs(data["metrics"].get(name), checked.metrics.get(name)):
            problems.append(
                f"{where}: metric {name} is {data['metrics'].get(name)} but its log gives "
                f"{checked.metrics.get(name)}"
            )
    for qid, value in checked.per_question.items():
        if _differs((data.get("per_question") or {}).get(qid), value):
            problems.append(f"{where}: per-question rate of '{qid}' differs from its log")
    for key in ("model", "judge", "samples_per_question", "imported"):
        if data.get(key) != getattr(checked, key):
            problems.append(f"{where}: {key} {data.get(key)!r} differs from its log's")
    content_hash = ["samples_sha256"] if data.get("entry_version") == ENTRY_VERSION else []
    for key in ("eval_id", "run_id", *content_hash):  # (before v3 the hash included ids)
        stored_value = (data.get("log") or {}).get(key)
        if stored_value is not None and stored_value != getattr(checked, key):
            problems.append(f"{where}: log.{key} {stored_value!r} differs from its log's")
    return problems


def _recheck_in_domain(stored: StoredEntry, log: Path) -> list[str]:
    """Re-check the entry's in-domain log and compare the result it stored."""
    where, block = stored.path.name, stored.data["in_domain"]
    try:
        checked = check_in_domain_log(log, (stored.data.get("run") or {}).get("domain"))
    except EmbenchError as error:
        return [f"{where}: its in-domain log {log} no longer passes: {error}"]
    stored_metrics = block.get("metrics") or {}
    return [
        f"{where}: in-domain metric {name} is {stored_metrics.get(name)} but its log gives {value}"
        for name, value in checked.metrics.items()
        if _differs(stored_metrics.get(name), value)
    ]


def _unfetched(board: Board) -> str | None:
    """A note when the board pins a published question set this machine has not fetched (its
    text is never in the repository): an empty board is fine; its entries' logs cannot be
    re-checked until it is fetched."""
    material = REGISTRY.get(board.question_set)
    if material is None or is_fetched(material):
        return None
    return (
        f"board '{board.name}' pins published question set '{board.question_set}', not fetched "
        f"here (`embench questions fetch {board.question_set}`), so its pin was not checked"
    )


def _check_board(board: Board) -> list[str]:
    problems = []
    try:
        check_columns(board)
    except EmbenchError as error:
        problems.append(str(error))
    if _unfetched(board):
        return problems
    try:
        qset = load_question_set(board.question_set)
        if qset.fingerprint() != board.fingerprint:
            problems.append(
                f"board '{board.name}': question set '{board.question_set}' is at "
                f"{qset.fingerprint()[:12]}…, the board pins {board.fingerprint[:12]}…"
            )
    except EmbenchError as error:
        problems.append(f"board '{board.name}': {error}")
    return problems


def validate_tree(
    root: Path, names: list[str], logs_dir: Path | None = None
) -> tuple[list[str], str]:
    """(problems, one-line summary) for the named boards under ``root``."""
    logs = _logs_by_hash(logs_dir)
    problems: list[str] = []
    notes: list[str] = []
    entries = rechecked = 0
    for name in names:
        try:
            board = load_board(root, name)
        except EmbenchError as error:
            problems.append(str(error))
            continue
        problems += _check_board(board)
        note = _unfetched(board)
        if note:
            notes.append(note)
        try:
            stored_entries = load_entries(board)
        except EmbenchError as error:
            problems.append(str(error))
            continue
        seen: list[StoredEntry] = []
        for stored in stored_entries:
            entries += 1
            found = check_entry(stored, board)
            problems += [f"{name}/{p}" for p in found]
            for earlier in seen:
                how = same_eval(stored.identity(), earlier.identity())
                if how:
                    problems.append(
                        f"{name}/{stored.path.name}: a duplicate of {earlier.path.name} ({how})"
                    )
                    break
            seen.append(stored)
            sha = stored.sha256
            if logs_dir is not None and not found and sha not in logs:
                problems.append(
                    f"{name}/{stored.path.name}: its log (sha256 {sha[:12]}…) is not under "
                    f"{logs_dir}: every entry is re-checked against its log"
                )
            if not found and sha in logs:
                rechecked += 1
                problems += [f"{name}/{p}" for p in _recheck(stored, board, logs[sha])]
                in_domain_sha = ((stored.data.get("in_domain") or {}).get("log") or {}).get(
                    "sha256"
                )
                if in_domain_sha in logs:
                    problems += [
                        f"{name}/{p}" for p in _recheck_in_domain(stored, logs[in_domain_sha])
                    ]
        strays = [
            p.name
            for p in board.entries_dir.glob("*")
            if board.entries_dir.is_dir() and p.suffix != ".json" and not p.name.startswith(".")
        ]
        problems += [f"{name}/entries/{s}: not an entry (.json)" for s in strays]
    if logs_dir is None:
        rechecks = (
            "; no entry was re-checked against its log (pass --logs <folder of .eval logs> to "
            "recompute every metric)"
        )
    else:
        rechecks = f"; {rechecked} of {entries} re-checked against their logs in {logs_dir}"
    plural = "y" if entries == 1 else "ies"
    summary = f"ok: {entries} entr{plural} on {len(names)} board(s) under {root}{rechecks}"
    summary += "".join(f"; {note}" for note in notes)
    return problems, summary
