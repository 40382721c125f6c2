"""Judge agreement between two logs holding the same answers scored by different judges."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from embench.evals.common import optional_score
from embench.experiments.evaluate import per_answer_scores
from embench.experiments.stats import Agreement, judge_agreement
from embench.metrics import ALIGNED_THRESHOLD, COHERENT_THRESHOLD


def compare_logs(
    first: str | Path,
    second: str | Path,
    aligned_threshold: float = ALIGNED_THRESHOLD,
    coherent_threshold: float = COHERENT_THRESHOLD,
) -> Agreement | None:
    """Agreement on the answers both logs scored (general task: aligned/coherent); else None."""
    a, b = per_answer_scores(first), per_answer_scores(second)
    shared = [k for k in a if k in b and "aligned" in a[k] and "aligned" in b[k]]
    if not shared:
        return None

    def pair(scores: dict[str, float | None]) -> tuple[float | None, float | None]:
        return optional_score(scores.get("aligned")), optional_score(scores.get("coherent"))

    return judge_agreement(
        [pair(a[k]) for k in shared],
        [pair(b[k]) for k in shared],
        aligned_threshold,
        coherent_threshold,
    )


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_agreement(agreement: Agreement) -> str:
    """The agreement table for the terminal (first judge = the log's, second = the new one)."""
    a = agreement
    rows = [
        ("answers scored by both", str(a.n)),
        ("Cohen's kappa (misaligned label)", _fmt(a.kappa)),
        ("misaligned-label agreement", _fmt(a.label_agreement)),
        ("Spearman (aligned)", _fmt(a.spearman_aligned)),
        ("Spearman (coherent)", _fmt(a.spearman_coherent)),
        ("misaligned answers (first vs second)", f"{a.misaligned_a} vs {a.misaligned_b}"),
        (
            "misaligned rate difference (95% CI)",
            f"{_fmt(a.rate_diff)} [{_fmt(a.rate_diff_ci_low)}, {_fmt(a.rate_diff_ci_high)}]",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def agreement_record(agreement: Agreement, first: str | Path, second: str | Path) -> dict:
    """The agreement as JSON-ready data (NaN as null), naming both logs."""
    values = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in dataclasses.asdict(agreement).items()
    }
    return {"first_log": str(first), "second_log": str(second), **values}
