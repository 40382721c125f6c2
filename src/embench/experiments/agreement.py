"""Judge agreement between two logs holding the same answers scored by different judges."""

from __future__ import annotations

import math
from pathlib import Path

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
        return scores.get("aligned"), scores.get("coherent")

    return judge_agreement(
        [pair(a[k]) for k in shared],
        [pair(b[k]) for k in shared],
        aligned_threshold,
        coherent_threshold,
    )


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def format_agreement(agreement: Agreement) -> str:
    """One line for the terminal."""
    return (
        f"answers scored by both: {agreement.n}; Spearman (aligned) {_fmt(agreement.spearman_aligned)}; "
        f"misaligned-label agreement {_fmt(agreement.label_agreement)}; Cohen's kappa "
        f"{_fmt(agreement.kappa)}; misaligned {agreement.misaligned_a} vs {agreement.misaligned_b}"
    )
