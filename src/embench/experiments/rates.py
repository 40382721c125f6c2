"""This machine's measured rates, read from an experiment folder's finished work, for
``embench experiment CONFIG --estimate`` when the config states no ``cost``.

- Seconds per training step, per trainer: the median gap between logged steps in each cell's
  ``run/metrics.jsonl`` (the trainer is the run manifest's).
- Seconds per eval answer: each eval log's wall time (start to end: generation, judging and
  loading together) over its samples, the median over logs.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from embench.run.layout import MANIFEST_FILE


@dataclass(frozen=True)
class MeasuredRates:
    """Rates measured from earlier work, and how many runs and logs they came from."""

    train_seconds_per_step: dict[str, float] = field(default_factory=dict)
    eval_seconds_per_answer: float | None = None
    runs: int = 0
    logs: int = 0

    def __bool__(self) -> bool:
        return bool(self.train_seconds_per_step) or self.eval_seconds_per_answer is not None


def step_gaps(metrics: Path) -> list[float]:
    """Seconds between consecutive logged steps of one run's metrics.jsonl."""
    times = []
    for line in metrics.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if isinstance(row, dict) and isinstance(row.get("time"), (int, float)):
            times.append(float(row["time"]))
    times.sort()
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def eval_seconds_per_answer(log_file: Path) -> float | None:
    """Wall seconds per sample of one finished eval log (None when it cannot say)."""
    from inspect_ai.log import read_eval_log  # Inspect loads slowly: only when there are logs

    try:
        log = read_eval_log(str(log_file), header_only=True)
    except Exception:  # a log being written, or not a log: it simply gives no rate
        return None
    if log.status != "success" or log.results is None or not log.results.total_samples:
        return None
    try:
        start = datetime.fromisoformat(log.stats.started_at)
        end = datetime.fromisoformat(log.stats.completed_at)
    except (TypeError, ValueError):
        return None
    return (end - start).total_seconds() / log.results.total_samples


def measured_rates(folder: Path) -> MeasuredRates:
    """The rates an experiment folder's finished runs and eval logs show (empty if none)."""
    gaps: dict[str, list[float]] = {}
    runs = 0
    for metrics in sorted(folder.glob("cells/*/run/metrics.jsonl")):
        try:
            trainer = json.loads((metrics.parent / MANIFEST_FILE).read_text())["trainer"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unfinished run has no manifest yet
        found = step_gaps(metrics)
        if found:
            gaps.setdefault(trainer, []).extend(found)
            runs += 1
    per_answer = [
        rate
        for log_file in sorted(folder.glob("*/*/evals/*/logs/*.eval"))
        if (rate := eval_seconds_per_answer(log_file)) is not None
    ]
    return MeasuredRates(
        train_seconds_per_step={t: statistics.median(g) for t, g in sorted(gaps.items())},
        eval_seconds_per_answer=statistics.median(per_answer) if per_answer else None,
        runs=runs,
        logs=len(per_answer),
    )
