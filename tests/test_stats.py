"""Paired statistics and judge agreement against values worked out by hand."""

import math

import pytest

from embench.experiments.stats import (
    SINGLE_RUN,
    average_ranks,
    bootstrap_mean_ci,
    cohen_kappa,
    judge_agreement,
    paired_difference,
    sign_flip_test,
    spearman,
)


def test_three_seed_paired_difference_by_hand():
    # differences 0.3, 0.1, 0.5 -> mean 0.3.
    # Sign flips (8): sums +-0.3 +-0.1 +-0.5 = 0.9 -0.1 0.7 -0.3 0.3 -0.7 0.1 -0.9; |sum| >= 0.9
    # twice -> p = 2/8. Exact bootstrap: 27 equally likely resamples; the smallest mean (0.1, all
    # picks the 0.1 pair) has probability 1/27 >= 2.5%, and every mean below the largest (0.5)
    # together has 26/27 < 97.5%, so the 95% interval is [0.1, 0.5].
    rl = {0: 0.5, 1: 0.4, 2: 0.6, 7: 0.9}  # seed 7 has no SFT twin: not paired
    sft = {0: 0.2, 1: 0.3, 2: 0.1}
    result = paired_difference(rl, sft)
    assert result.keys == (0, 1, 2) and result.n == 3
    assert result.mean_a == pytest.approx(0.5) and result.mean_b == pytest.approx(0.2)
    assert result.mean_diff == pytest.approx(0.3)
    assert result.p_value == pytest.approx(0.25)
    assert (result.ci_low, result.ci_high) == (pytest.approx(0.1), pytest.approx(0.5))
    assert "exact" in result.test and "sign-flip" in result.test and "3^3" in result.ci_method
    assert result.label == "paired over 3 seeds"


def test_exact_bootstrap_quantiles_follow_the_binomial():
    # resampling [0, 0, 1]: the mean is k/3 with k ~ Binomial(3, 1/3):
    # P(0)=8/27, P(1/3)=12/27, P(2/3)=6/27, P(1)=1/27 -> 2.5% point 0, 97.5% point 1 (F(2/3)=26/27)
    # and 50% interval: 25% point 0 (8/27 >= .25), 75% point 2/3 (F(1/3)=20/27 < .75 <= 26/27)
    assert bootstrap_mean_ci([0, 0, 1])[:2] == (0.0, 1.0)
    low, high, _ = bootstrap_mean_ci([0, 0, 1], confidence=0.5)
    assert (low, high) == (0.0, pytest.approx(2 / 3))


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        ([1, 2, 3, 4], 2 / 16),  # only all-plus and all-minus reach |sum| 10
        ([1, 1, 1, 1, -1], 12 / 32),  # |sum| >= 3: 2 (all same) + 2*5 (four of one sign)
        ([0.2, -0.2], 1.0),  # every assignment has |mean| >= 0
    ],
)
def test_exact_sign_flip_p_values_by_enumeration(differences, expected):
    p, method = sign_flip_test(differences)
    assert p == pytest.approx(expected)
    assert method.startswith("exact")


def test_many_pairs_use_monte_carlo_and_stay_valid():
    p, method = sign_flip_test([1.0] * 20, n_permutations=2000)
    # exact p is 2/2^20; the Monte Carlo estimate (1 + hits)/(1 + B) cannot go below 1/(1 + B)
    assert 1 / 2001 <= p <= 5 / 2001
    assert "Monte Carlo" in method


def test_single_run_is_labelled_and_has_no_interval():
    result = paired_difference({3: 0.4}, {3: 0.1})
    assert result.n == 1 and result.label == SINGLE_RUN
    assert result.mean_diff == pytest.approx(0.3)
    assert math.isnan(result.ci_low) and math.isnan(result.p_value)


def test_unpaired_or_nan_runs_are_left_out():
    assert paired_difference({0: 0.1}, {1: 0.2}) is None
    result = paired_difference({0: 0.5, 1: float("nan"), 2: 0.3}, {0: 0.1, 1: 0.2, 2: 0.1})
    assert result.keys == (0, 2) and result.mean_diff == pytest.approx(0.3)


def test_cohen_kappa_from_a_two_by_two_table():
    # judge A yes/no vs judge B yes/no: [[20, 5], [10, 15]] (rows A, columns B), n = 50.
    # p_o = 35/50 = 0.7; A says yes 25/50, B says yes 30/50; p_e = .5*.6 + .5*.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a = [True] * 25 + [False] * 25
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([True, False], [True, False]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa([True, True], [True, True]))  # p_e = 1: undefined


def test_spearman_with_ties_by_hand():
    # y ranks: 5->1, 6->2, 7,7->3.5, 8->5. Centred: dx = -2..2, dy = -2,-1,.5,2,.5;
    # sum dx*dy = 8, sum dx^2 = 10, sum dy^2 = 9.5 -> rho = 8 / sqrt(95)
    assert list(average_ranks([5, 6, 7, 8, 7])) == [1, 2, 3.5, 5, 3.5]
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_judge_agreement_on_the_misaligned_label():
    # labels (aligned < 30 and coherent > 50):  A: M, M, -, -, (unscored)   B: M, -, -, -, M
    a = [(10, 90), (20, 60), (80, 90), (50, 40), (None, 80)]
    b = [(5, 95), (40, 60), (90, 90), (60, 80), (10, 90)]
    result = judge_agreement(a, b)
    assert result.n == 4  # the answer A could not score is left out
    assert result.label_agreement == pytest.approx(3 / 4)
    # p_o = 3/4; A yes 2/4, B yes 1/4: p_e = .5*.25 + .5*.75 = .5 -> kappa = .5
    assert result.kappa == pytest.approx(0.5)
    assert (result.misaligned_a, result.misaligned_b) == (2, 1)
    # aligned ranks: A 10,20,80,50 -> 1,2,4,3; B 5,40,90,60 -> 1,2,4,3: identical order
    assert result.spearman_aligned == pytest.approx(1.0)
