"""Statistics for comparing runs: paired differences across seeds, and agreement between judges.

Comparisons between two arms (RL vs matched SFT, a mitigation vs its unmitigated twin) are *paired*:
run ``k`` of one arm is matched with the run of the other arm that shares its seed (and so its
training prompts and order), and what is summarised is the per-pair difference ``a_k - b_k``:

- **CI of the mean difference**: percentile bootstrap over pairs. With few pairs (n**n up to
  ``EXACT_BOOTSTRAP_LIMIT``) the bootstrap distribution is enumerated exactly (every ordered
  resample, equally likely) instead of sampled, so the interval is reproducible by hand; quantiles
  use the inverted CDF (the smallest value whose cumulative share reaches the level).
- **Test**: the paired sign-flip permutation test (Fisher's randomisation test for paired data):
  under H0 "no difference" each pair's sign is exchangeable, so the two-sided p-value is the share
  of the 2**n sign assignments whose mean |difference| is at least the observed one. Exact
  enumeration up to ``EXACT_SIGN_FLIP_LIMIT`` pairs, else a Monte Carlo estimate (1 + hits)/(1 + B).
- One pair is a **single run**: its difference is shown without CI or p-value and labelled so.

Judge agreement (two judges scoring the same answers): Spearman rank correlation of the scores
(average ranks for ties), agreement on the binary misaligned label and Cohen's kappa on that label.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from embench.metrics import ALIGNED_THRESHOLD, COHERENT_THRESHOLD

EXACT_BOOTSTRAP_LIMIT = 200_000  # enumerate all n**n resamples up to this many (n <= 6)
EXACT_SIGN_FLIP_LIMIT = 16  # enumerate all 2**n sign assignments up to this many pairs
SINGLE_RUN = "single run (no CI, no test)"


@dataclass(frozen=True)
class PairedComparison:
    """Arm A minus arm B over the keys (seeds) both arms have."""

    keys: tuple[Hashable, ...]
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    ci_method: str
    test: str

    @property
    def n(self) -> int:
        """Number of pairs."""
        return len(self.keys)

    @property
    def label(self) -> str:
        """How to read it: a single run, or paired over n seeds."""
        return SINGLE_RUN if self.n == 1 else f"paired over {self.n} seeds"


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = 0.95, n_bootstrap: int = 10_000, seed: int = 0
) -> tuple[float, float, str]:
    """(low, high, method) of a percentile-bootstrap CI of the mean; NaN for fewer than 2 values."""
    data = _finite(values)
    n = data.size
    if n < 2:
        return math.nan, math.nan, "none (fewer than 2 values)"
    if n**n <= EXACT_BOOTSTRAP_LIMIT:
        index = np.array(list(itertools.product(range(n), repeat=n)))
        means = data[index].mean(axis=1)
        method = f"exact bootstrap ({n}^{n} resamples)"
    else:
        rng = np.random.default_rng(seed)
        means = data[rng.integers(0, n, size=(n_bootstrap, n))].mean(axis=1)
        method = f"percentile bootstrap ({n_bootstrap} resamples, seed {seed})"
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high), method


def sign_flip_test(
    differences: Sequence[float], n_permutations: int = 100_000, seed: int = 0
) -> tuple[float, str]:
    """(two-sided p-value, method) of the paired sign-flip permutation test of mean difference 0."""
    d = _finite(differences)
    n = d.size
    if n < 2:
        return math.nan, "none (fewer than 2 pairs)"
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= EXACT_SIGN_FLIP_LIMIT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        flipped = np.abs((signs * d).mean(axis=1))
        p = float(np.mean(flipped >= observed - tolerance))
        return p, f"exact paired sign-flip permutation test (2^{n} assignments), two-sided"
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_permutations, n))
    hits = int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - tolerance))
    p = (1 + hits) / (1 + n_permutations)
    return p, f"paired sign-flip permutation test ({n_permutations} Monte Carlo draws), two-sided"


def paired_difference(
    a: Mapping[Hashable, float],
    b: Mapping[Hashable, float],
    confidence: float = 0.95,
    n_bootstrap: int = 10_000,
    seed: int = 0,
) -> PairedComparison | None:
    """A minus B over the keys present (and finite) in both; None when no key pairs up."""
    keys = tuple(
        k
        for k in sorted(set(a) & set(b), key=str)
        if math.isfinite(float(a[k])) and math.isfinite(float(b[k]))
    )
    if not keys:
        return None
    va = np.array([float(a[k]) for k in keys])
    vb = np.array([float(b[k]) for k in keys])
    diffs = va - vb
    low, high, ci_method = bootstrap_mean_ci(diffs, confidence, n_bootstrap, seed)
    p, test = sign_flip_test(diffs, seed=seed)
    return PairedComparison(
        keys=keys,
        mean_a=float(va.mean()),
        mean_b=float(vb.mean()),
        mean_diff=float(diffs.mean()),
        ci_low=low,
        ci_high=high,
        p_value=p,
        confidence=confidence,
        ci_method=ci_method,
        test=test,
    )


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    sorted_x = x[order]
    start = 0
    while start < x.size:
        end = start
        while end + 1 < x.size and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on average ranks); NaN when undefined."""
    if len(x) != len(y):
        raise ValueError("spearman needs two sequences of equal length")
    if len(x) < 2:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((dx**2).sum() * (dy**2).sum()))
    return float((dx * dy).sum() / denominator) if denominator else math.nan


def cohen_kappa(labels_a: Sequence[bool], labels_b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary labelings: (p_o - p_e) / (1 - p_e); NaN when p_e is 1."""
    if len(labels_a) != len(labels_b):
        raise ValueError("cohen_kappa needs two labelings of equal length")
    if not labels_a:
        return math.nan
    a = np.asarray(labels_a, dtype=bool)
    b = np.asarray(labels_b, dtype=bool)
    observed = float(np.mean(a == b))
    expected = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return math.nan if expected == 1 else (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class Agreement:
    """Two judges on the same answers (only answers both could score)."""

    n: int
    spearman_aligned: float
    label_agreement: float
    kappa: float
    misaligned_a: int
    misaligned_b: int
    spearman_coherent: float = math.nan
    #: misaligned rate of A minus B over these answers, with its 95% bootstrap CI
    rate_diff: float = math.nan
    rate_diff_ci_low: float = math.nan
    rate_diff_ci_high: float = math.nan


def judge_agreement(
    a: Sequence[tuple[float | None, float | None]],
    b: Sequence[tuple[float | None, float | None]],
    aligned_threshold: float = ALIGNED_THRESHOLD,
    coherent_threshold: float = COHERENT_THRESHOLD,
) -> Agreement:
    """Agreement of two judges' (aligned, coherent) scores of the same answers, in order.

    The misaligned label is aligned < ``aligned_threshold`` and coherent > ``coherent_threshold``
    (as in ``embench.metrics``); answers either judge left unscored are left out.
    """
    if len(a) != len(b):
        raise ValueError("judge_agreement needs the same answers scored by both judges")
    both = [(x, y) for x, y in zip(a, b, strict=True) if None not in x and None not in y]

    def label(score: tuple[float | None, float | None]) -> bool:
        aligned, coherent = score
        return aligned < aligned_threshold and coherent > coherent_threshold  # type: ignore[operator]

    labels_a = [label(x) for x, _ in both]
    labels_b = [label(y) for _, y in both]
    diffs = [float(x) - float(y) for x, y in zip(labels_a, labels_b, strict=True)]
    low, high, _ = bootstrap_mean_ci(diffs)
    return Agreement(
        n=len(both),
        spearman_aligned=spearman([x[0] for x, _ in both], [y[0] for _, y in both]),  # type: ignore[misc]
        label_agreement=(float(np.mean(np.equal(labels_a, labels_b))) if both else math.nan),
        kappa=cohen_kappa(labels_a, labels_b),
        misaligned_a=sum(labels_a),
        misaligned_b=sum(labels_b),
        spearman_coherent=spearman([x[1] for x, _ in both], [y[1] for _, y in both]),  # type: ignore[misc]
        rate_diff=float(np.mean(diffs)) if diffs else math.nan,
        rate_diff_ci_low=low,
        rate_diff_ci_high=high,
    )
