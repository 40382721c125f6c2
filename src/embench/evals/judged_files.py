"""Judged answers as files: published CSV/JSONL in (``embench import``), a log's answers out as CSV.

Formats read:

- the emergent-misalignment CSV: ``question, answer, question_id, aligned, coherent``; any other
  column is kept as the sample's metadata;
- EMA_RL's CSVs: the same plus ``reasoning``; its eval appends every question's rows with their
  own header line, so header rows repeated mid-file are skipped (and counted in one warning);
- JSONL, one object per line with the same fields.

A score that is empty, NaN or not a number is *no score* (never 0). An optional ``truncated``
column (0/1, what ``embench export --format csv`` writes) is kept.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

from embench.errors import EmbenchError
from embench.limits import read_text

REQUIRED = ("question", "answer", "question_id", "aligned", "coherent")
# How an imported log, its entry and its row on a board say where the answers come from.
IMPORTED_NOTE = "imported: published answers and scores, not generated here"
CSV_COLUMNS = ("question_id", "question", "reasoning", "answer", "aligned", "coherent", "truncated")
MAX_JUDGED_FILE_BYTES = 256 * 2**20

logger = logging.getLogger(__name__)


def parse_score(value: Any) -> float | None:
    """A recorded judge score: a finite number in 0-100, else None (no score, never 0)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 <= number <= 100 else None


def read_judged(path: str | Path) -> list[dict[str, Any]]:
    """The judged answers of a CSV or JSONL file, in file order (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise EmbenchError(f"no file at {path}")
    text = read_text(path, "judged answers file", MAX_JUDGED_FILE_BYTES)
    if path.suffix.lower() == ".jsonl":
        rows, columns = _jsonl_rows(path, text), None
    elif path.suffix.lower() == ".csv":
        rows, columns = _csv_rows(path, text)
    else:
        raise EmbenchError(f"{path}: give a .csv or .jsonl file of judged answers")
    seen = set(columns or ()) | {k for row in rows for k in row}
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        raise EmbenchError(
            f"{path}: missing column(s) {', '.join(missing)}; judged answers need "
            f"{', '.join(REQUIRED)}"
        )
    if not rows:
        raise EmbenchError(f"{path} holds no judged answers")
    return rows


def _jsonl_rows(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise EmbenchError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise EmbenchError(f"{path}:{number}: expected one JSON object per line")
        rows.append(row)
    return rows


def _csv_rows(path: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = list(reader.fieldnames or [])
    rows, headers = [], 0
    for row in reader:
        if all(row.get(c) == c for c in columns):  # a header line repeated mid-file
            headers += 1
            continue
        rows.append({k: v for k, v in row.items() if k is not None})
    if headers:
        logger.warning("%s: skipped %d repeated header row(s)", path, headers)
    return rows, columns


def row_values(row: dict[str, Any]) -> dict[str, Any]:
    """One answer's fields: text columns as text, scores parsed, the rest as metadata."""
    truncated = parse_score(row.get("truncated"))
    return {
        "question_id": str(row["question_id"]),
        "question": str(row["question"]),
        "answer": "" if row["answer"] is None else str(row["answer"]),
        "reasoning": str(row.get("reasoning") or ""),
        "aligned": parse_score(row["aligned"]),
        "coherent": parse_score(row["coherent"]),
        "truncated": bool(truncated),
        "extra": {k: v for k, v in row.items() if k not in (*CSV_COLUMNS, "truncated")},
    }


def log_rows(log: Any, scorer: str = "misalignment_judge") -> list[dict[str, Any]]:
    """A misalignment log's answers with their scores, in sample order, as CSV rows."""
    from embench.evals.common import answer_parts

    rows = []
    for sample in log.samples or []:
        score = (sample.scores or {}).get(scorer)
        value = score.value if score is not None and isinstance(score.value, dict) else {}
        answer, reasoning, _ = answer_parts(sample.output)
        if score is not None and score.answer is not None:
            answer = score.answer  # what the judge saw (the whole text of an unclosed answer)
        metadata = sample.metadata or {}
        rows.append(
            {
                "question_id": metadata.get("question_id", ""),
                "question": metadata.get("question", ""),
                "reasoning": reasoning,
                "answer": answer,
                "aligned": _cell(value.get("aligned")),
                "coherent": _cell(value.get("coherent")),
                "truncated": int(bool(value.get("truncated"))),
            }
        )
    return rows


def _cell(value: Any) -> str:
    number = parse_score(value)
    return "" if number is None else repr(number)


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text with the columns ``embench import`` reads."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
