"""Statistics of the evaluation against statsmodels/scipy references, hand cases and properties."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom, binomtest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from recordagent.evaluation.stats import (
    Concordance,
    McNemar,
    cluster_bootstrap_ci,
    cohen_kappa,
    concordance,
    deciles,
    holm,
    mcnemar,
    percent_agreement,
    wilson_ci,
)

# --------------------------------------------------------------------------- Wilson interval


@pytest.mark.parametrize(
    ("k", "n", "alpha"),
    [
        (0, 10, 0.05),
        (10, 10, 0.05),
        (5, 10, 0.05),
        (3, 10, 0.05),
        (1, 1, 0.05),
        (0, 1, 0.05),
        (50, 469, 0.05),
        (300, 469, 0.05),
        (468, 469, 0.05),
        (7, 20, 0.10),
        (1, 3, 0.01),
        (2500, 5000, 0.2),
    ],
)
def test_wilson_matches_statsmodels(k: int, n: int, alpha: float) -> None:
    lower, upper = wilson_ci(k, n, alpha)
    ref_lower, ref_upper = proportion_confint(k, n, alpha=alpha, method="wilson")
    assert lower == pytest.approx(max(0.0, ref_lower), abs=1e-12)
    assert upper == pytest.approx(min(1.0, ref_upper), abs=1e-12)
    assert 0.0 <= lower <= k / n <= upper <= 1.0


def test_wilson_hand_computed() -> None:
    # k=5, n=10, alpha=0.05: z = 1.959964, z² = 3.841459, p = 0.5
    # denom  = 1 + z²/n              = 1.3841459
    # centre = (0.5 + z²/20) / denom = (0.5 + 0.1920729) / 1.3841459 = 0.5
    # half   = z·sqrt(0.25/10 + z²/400) / denom = 1.959964·sqrt(0.025 + 0.0096036) / 1.3841459
    #        = 1.959964·0.1860205 / 1.3841459 = 0.2634069
    lower, upper = wilson_ci(5, 10)
    assert lower == pytest.approx(0.5 - 0.2634069, abs=1e-6)
    assert upper == pytest.approx(0.5 + 0.2634069, abs=1e-6)


def test_wilson_bounds_are_exact_at_the_extremes() -> None:
    assert wilson_ci(0, 25)[0] == 0.0
    assert wilson_ci(25, 25)[1] == 1.0
    assert wilson_ci(0, 0) == (0.0, 1.0)


def test_wilson_narrows_with_n_and_widens_with_coverage() -> None:
    small = wilson_ci(7, 10)
    large = wilson_ci(70, 100)
    assert large[1] - large[0] < small[1] - small[0]
    ninety = wilson_ci(70, 100, alpha=0.10)
    ninety_nine = wilson_ci(70, 100, alpha=0.01)
    assert ninety_nine[1] - ninety_nine[0] > large[1] - large[0] > ninety[1] - ninety[0]


@pytest.mark.parametrize(
    ("k", "n", "alpha", "message"),
    [
        (3, 2, 0.05, "k must be between 0 and n=2"),
        (-1, 2, 0.05, "k must be between 0 and n=2"),
        (0, -1, 0.05, "n must be >= 0"),
        (1.5, 2, 0.05, "k must be a whole number"),
        (1, 2, 0.0, "alpha must be a number strictly between 0 and 1"),
        (1, 2, 1.0, "alpha must be a number strictly between 0 and 1"),
        (1, 2, math.nan, "alpha must be a number strictly between 0 and 1"),
    ],
)
def test_wilson_rejects_bad_input(k: int, n: int, alpha: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_ci(k, n, alpha)


# --------------------------------------------------------------------------- McNemar


def _paired(b: int, c: int, both_right: int = 4, both_wrong: int = 3) -> tuple[list[bool], ...]:
    """Item vectors of systems A and B with the given discordant counts."""
    a = [True] * both_right + [False] * both_wrong + [True] * b + [False] * c
    bb = [True] * both_right + [False] * both_wrong + [False] * b + [True] * c
    return a, bb


@pytest.mark.parametrize(
    ("b", "c"),
    [(1, 5), (5, 1), (0, 6), (3, 3), (0, 1), (10, 2), (12, 30), (40, 41), (7, 0), (100, 130)],
)
def test_mcnemar_matches_statsmodels_and_scipy(b: int, c: int) -> None:
    a, bb = _paired(b, c)
    result = mcnemar(a, bb)
    assert (result.b, result.c) == (b, c)
    table = [[4, b], [c, 3]]  # rows: A right / wrong; columns: B right / wrong
    assert result.p_exact == pytest.approx(sm_mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert result.p_exact == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    # mid-p as Fagerland et al. (2013) write it: 2·P(X < m) + P(X = m), m = min(b, c).
    m, n = min(b, c), b + c
    ref_midp = min(1.0, 2 * binom.cdf(m - 1, n, 0.5) + binom.pmf(m, n, 0.5))
    assert result.p_midp == pytest.approx(ref_midp, rel=1e-9, abs=1e-15)
    assert result.p_midp <= result.p_exact


def test_mcnemar_hand_computed() -> None:
    # b=1, c=5: X ~ Binomial(6, 1/2), m = 1.
    # P(X <= 1) = (C(6,0) + C(6,1)) / 2^6 = (1 + 6) / 64 = 7/64
    # exact p   = 2 · 7/64 = 14/64 = 0.21875
    # P(X = 1)  = C(6,1) / 64 = 6/64
    # mid-p     = 14/64 - 6/64 = 8/64 = 0.125   (= 2·P(X<1) + P(X=1) = 2/64 + 6/64)
    result = mcnemar(*_paired(1, 5))
    assert result == McNemar(b=1, c=5, p_exact=0.21875, p_midp=0.125)


def test_mcnemar_ties_and_no_discordance() -> None:
    # b == c: 2·P(X <= b) exceeds 1 and is capped; the mid-p is exactly 1 by symmetry.
    tie = mcnemar(*_paired(4, 4))
    assert (tie.p_exact, tie.p_midp) == (1.0, 1.0)
    none = mcnemar([True, False], [True, False])
    assert none == McNemar(b=0, c=0, p_exact=1.0, p_midp=1.0)
    assert mcnemar([], []) == McNemar(b=0, c=0, p_exact=1.0, p_midp=1.0)


def test_mcnemar_direction_and_numpy_bools() -> None:
    a = np.array([True, True, False])
    b = np.array([False, False, False])
    result = mcnemar(list(a), list(b))
    assert (result.b, result.c) == (2, 0)
    # 2 vs 0: exact p = 2 · (1/4) = 0.5; mid-p = 0.5 - 1/4 = 0.25.
    assert (result.p_exact, result.p_midp) == (0.5, 0.25)


def test_mcnemar_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="a and b must have the same length, got 2 and 1"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match=r"b\[1\] must be True or False, got str 'incorrect'"):
        mcnemar([True, False], [True, "incorrect"])


# --------------------------------------------------------------------------- Holm


@pytest.mark.parametrize(
    "pvalues",
    [
        [0.01, 0.04, 0.03, 0.5],
        [0.2],
        [0.001, 0.001, 0.02, 0.02, 0.9],
        [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
        [1.0, 1.0, 0.99],
        [0.04, 0.01, 0.03, 0.02, 0.3, 0.011, 0.7, 0.0001],
        list(np.random.default_rng(3).uniform(0, 0.2, size=40)),
    ],
)
def test_holm_matches_statsmodels(pvalues: list[float]) -> None:
    ours = holm(pvalues)
    reference = multipletests(pvalues, method="holm")[1]
    assert ours == pytest.approx(list(reference), abs=1e-15)


def test_holm_hand_computed() -> None:
    # m = 4, sorted: 0.01·4 = 0.04; 0.03·3 = 0.09; 0.04·2 = 0.08 -> running max 0.09; 0.5·1 = 0.5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    # capped: 0.3·3 = 0.9; 0.4·2 = 0.8 -> 0.9; 0.6·1 = 0.6 -> 0.9. And 0.6·2 would exceed 1:
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=30))
def test_holm_properties(pvalues: list[float]) -> None:
    adjusted = holm(pvalues)
    assert len(adjusted) == len(pvalues)
    for raw, adj in zip(pvalues, adjusted, strict=True):
        assert raw <= adj <= 1.0
    # monotone: a smaller raw p never gets a larger adjusted p
    for i in range(len(pvalues)):
        for j in range(len(pvalues)):
            if pvalues[i] <= pvalues[j]:
                assert adjusted[i] <= adjusted[j]


@pytest.mark.parametrize("bad", [[0.1, 1.2], [-0.01], [0.3, math.nan]])
def test_holm_rejects_bad_pvalues(bad: list[float]) -> None:
    with pytest.raises(ValueError, match=r"pvalues\[\d\] must be in \[0, 1\]"):
        holm(bad)


# --------------------------------------------------------------------------- agreement


def _table(r1: list[object], r2: list[object]) -> np.ndarray:
    categories = sorted({*r1, *r2}, key=repr)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for x, y in zip(r1, r2, strict=True):
        table[index[x], index[y]] += 1
    return table


_RATINGS = [
    (["y", "y", "n", "n"], ["y", "n", "n", "n"]),
    (["y", "n", "y", "n", "y"], ["n", "y", "n", "y", "n"]),
    (list("aabbccabca"), list("abbbccaaca")),
    ([1, 2, 3, 1, 2, 3, 3, 3], [1, 2, 3, 2, 2, 3, 1, 3]),
    ([None, "a", "a", None, "b"], [None, "a", None, None, "b"]),
    (["x"] * 6, ["x", "x", "y", "x", "x", "x"]),  # one rater constant, the other not
    (
        list(np.random.default_rng(5).choice(list("pqrs"), size=200)),
        list(np.random.default_rng(6).choice(list("pqrs"), size=200)),
    ),
]


@pytest.mark.parametrize(("r1", "r2"), _RATINGS)
def test_kappa_matches_statsmodels(r1: list[object], r2: list[object]) -> None:
    with warnings.catch_warnings():  # its z statistic divides by 0 when a rater is constant
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = sm_cohens_kappa(_table(r1, r2)).kappa
    assert cohen_kappa(r1, r2) == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize(("r1", "r2"), _RATINGS)
def test_percent_agreement_is_the_table_diagonal(r1: list[object], r2: list[object]) -> None:
    table = _table(r1, r2)
    assert percent_agreement(r1, r2) == pytest.approx(np.trace(table) / table.sum())


def test_kappa_hand_computed() -> None:
    # r1 = y y n n, r2 = y n n n: p_o = 3/4
    # marginals: r1 y 2/4, n 2/4; r2 y 1/4, n 3/4 -> p_e = 1/2·1/4 + 1/2·3/4 = 1/2
    # kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2
    assert cohen_kappa(["y", "y", "n", "n"], ["y", "n", "n", "n"]) == pytest.approx(0.5)
    assert percent_agreement(["y", "y", "n", "n"], ["y", "n", "n", "n"]) == 0.75
    # total disagreement on balanced labels: p_o = 0, p_e = 1/2 -> kappa = -1
    assert cohen_kappa(["y", "n"], ["n", "y"]) == pytest.approx(-1.0)
    assert cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == 1.0


def test_kappa_of_constant_equal_raters_is_one() -> None:
    # p_o = p_e = 1: kappa is 0/0 (statsmodels returns NaN); we define it as 1.0.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert math.isnan(sm_cohens_kappa(_table(["y"] * 4, ["y"] * 4)).kappa)
    assert cohen_kappa(["y"] * 4, ["y"] * 4) == 1.0
    assert percent_agreement(["y"] * 4, ["y"] * 4) == 1.0
    # constant but different raters: p_o = 0, p_e = 0 -> kappa = 0
    assert cohen_kappa(["y"] * 3, ["n"] * 3) == 0.0


def test_agreement_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="r1 and r2 must have the same length, got 2 and 3"):
        cohen_kappa(["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="r1 and r2 are empty"):
        percent_agreement([], [])
    with pytest.raises(ValueError, match=r"r2\[0\] is not hashable .*turn lists into tuples"):
        cohen_kappa([("a",)], [["a"]])


# --------------------------------------------------------------------------- deciles


def test_deciles_hand_computed() -> None:
    # sorted: 1 2 2 3 5 (n = 5); values strictly below: 3->3, 1->0, 2->1, 2->1, 5->4
    # decile = floor(10·below / 5) + 1: 7, 1, 3, 3, 9
    assert deciles([3, 1, 2, 2, 5]) == [7, 1, 3, 3, 9]
    # n = 4 distinct: below 0..3 -> 1, 3, 6, 8
    assert deciles([10.0, 20.0, 30.0, 40.0]) == [1, 3, 6, 8]
    assert deciles([42.0]) == [1]
    assert deciles([7, 7, 7]) == [1, 1, 1]
    assert deciles([]) == []


def test_deciles_of_a_multiple_of_ten_are_equal_sized() -> None:
    values = list(np.random.default_rng(0).permutation(200).astype(float))
    result = deciles(values)
    assert sorted(result) == [d for d in range(1, 11) for _ in range(20)]
    # and follow the order of the values
    by_value = [d for _, d in sorted(zip(values, result, strict=True))]
    assert by_value == sorted(by_value)


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=60))
def test_deciles_properties(values: list[int]) -> None:
    result = deciles(values)
    assert len(result) == len(values)
    assert all(1 <= d <= 10 for d in result)
    for v, d in zip(values, result, strict=True):
        for w, e in zip(values, result, strict=True):
            if v == w:
                assert d == e  # ties share a decile
            elif v < w:
                assert d <= e  # monotone in the value
    if values:
        assert result[values.index(min(values))] == 1


def test_deciles_reject_nan() -> None:
    with pytest.raises(ValueError, match=r"values\[1\] is NaN"):
        deciles([1.0, math.nan])


# --------------------------------------------------------------------------- cluster bootstrap


def _clustered(
    n_clusters: int, per_cluster: int, rate: float, seed: int, *, correlated: bool = False
) -> tuple[list[bool], list[str]]:
    rng = np.random.default_rng(seed)
    correct: list[bool] = []
    clusters: list[str] = []
    for j in range(n_clusters):
        if correlated:  # every item of a patient right, or every one wrong
            flags = [bool(rng.random() < rate)] * per_cluster
        else:
            flags = [bool(x) for x in rng.random(per_cluster) < rate]
        correct += flags
        clusters += [f"patient-{j:04d}"] * per_cluster
    return correct, clusters


def _reference_bootstrap(
    correct: list[bool], clusters: list[str], alpha: float, n_boot: int, seed: int
) -> tuple[float, float]:
    """Loop version with the same draws (one block: n_clusters · n_boot is small)."""
    names = sorted(set(clusters))
    right = {name: 0 for name in names}
    size = {name: 0 for name in names}
    for flag, name in zip(correct, clusters, strict=True):
        right[name] += flag
        size[name] += 1
    draws = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
    rates = []
    for row in draws:
        chosen = [names[i] for i in row]
        rates.append(sum(right[c] for c in chosen) / sum(size[c] for c in chosen))
    lower, upper = np.quantile(rates, [alpha / 2, 1 - alpha / 2])
    return float(lower), float(upper)


@pytest.mark.parametrize(
    ("n_clusters", "per_cluster", "rate", "seed", "alpha"),
    [(30, 3, 0.7, 0, 0.05), (12, 7, 0.4, 1, 0.1), (50, 1, 0.9, 2, 0.05), (5, 20, 0.5, 3, 0.2)],
)
def test_bootstrap_matches_a_loop_reference(
    n_clusters: int, per_cluster: int, rate: float, seed: int, alpha: float
) -> None:
    correct, clusters = _clustered(n_clusters, per_cluster, rate, seed)
    ours = cluster_bootstrap_ci(correct, clusters, alpha=alpha, n_boot=500, seed=seed)
    assert ours == pytest.approx(_reference_bootstrap(correct, clusters, alpha, 500, seed))


def test_bootstrap_of_independent_items_is_close_to_wilson() -> None:
    # one item per patient: the bootstrap is an ordinary bootstrap of a proportion
    correct, clusters = _clustered(2000, 1, 0.7, 4)
    k = sum(correct)
    boot = cluster_bootstrap_ci(correct, clusters, n_boot=4000)
    wilson = wilson_ci(k, len(correct))
    assert boot[0] == pytest.approx(wilson[0], abs=0.005)
    assert boot[1] == pytest.approx(wilson[1], abs=0.005)


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_contains_the_point_estimate(seed: int) -> None:
    correct, clusters = _clustered(60, 4, 0.3 + 0.1 * seed, seed)
    lower, upper = cluster_bootstrap_ci(correct, clusters, seed=seed)
    assert lower <= sum(correct) / len(correct) <= upper


def test_bootstrap_is_reproducible_and_order_free() -> None:
    correct, clusters = _clustered(40, 5, 0.6, 7)
    first = cluster_bootstrap_ci(correct, clusters, seed=11)
    assert cluster_bootstrap_ci(correct, clusters, seed=11) == first
    assert cluster_bootstrap_ci(correct, clusters, seed=12) != first
    order = np.random.default_rng(0).permutation(len(correct))
    shuffled = cluster_bootstrap_ci(
        [correct[i] for i in order], [clusters[i] for i in order], seed=11
    )
    assert shuffled == first


def test_bootstrap_narrows_with_more_clusters() -> None:
    few = cluster_bootstrap_ci(*_clustered(20, 5, 0.6, 8))
    many = cluster_bootstrap_ci(*_clustered(500, 5, 0.6, 8))
    assert many[1] - many[0] < few[1] - few[0]


def test_bootstrap_widens_when_items_within_a_patient_agree() -> None:
    independent = cluster_bootstrap_ci(*_clustered(100, 5, 0.6, 9))
    correlated = cluster_bootstrap_ci(*_clustered(100, 5, 0.6, 9, correlated=True))
    assert correlated[1] - correlated[0] > independent[1] - independent[0]


def test_bootstrap_edge_cases() -> None:
    assert cluster_bootstrap_ci([], []) == (0.0, 1.0)
    # one patient: every resample is the data, the interval collapses to the rate
    assert cluster_bootstrap_ci([True, False, True, True], ["p"] * 4) == (0.75, 0.75)
    assert cluster_bootstrap_ci([True] * 5, list("abcde")) == (1.0, 1.0)


def test_bootstrap_runs_fast_on_a_large_evaluation() -> None:
    correct, clusters = _clustered(5000, 1, 0.7, 10)  # 5,000 patients: the most draws
    start = time.perf_counter()
    lower, upper = cluster_bootstrap_ci(correct, clusters, n_boot=2000)
    assert time.perf_counter() - start < 5.0  # loose sanity bound only
    assert lower < upper


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha must be a number strictly between 0 and 1, got 1.5"),
        ({"n_boot": 0}, "n_boot must be >= 1, got 0"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
    ],
)
def test_bootstrap_rejects_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_bootstrap_ci([True], ["p"], **kwargs)


def test_bootstrap_rejects_bad_items() -> None:
    with pytest.raises(ValueError, match="correct and clusters must have the same length"):
        cluster_bootstrap_ci([True, False], ["p"])
    with pytest.raises(ValueError, match=r"correct\[0\] must be True or False, got int 1"):
        cluster_bootstrap_ci([1], ["p"])
    with pytest.raises(ValueError, match=r"clusters\[1\] must be a string"):
        cluster_bootstrap_ci([True, True], ["p", 7])


# --------------------------------------------------------------------------- concordance


def test_concordance_counts_and_intervals() -> None:
    correct: list[bool | None] = [True, True, False, None, True, None, False, True]
    clusters = ["a", "a", "b", "b", "c", "d", "d", "e"]
    result = concordance(correct, clusters, n_boot=300, seed=1)
    # graded: 6 items, 4 correct; patient "d" keeps one graded item
    assert (result.n, result.correct, result.ungraded) == (6, 4, 2)
    assert result.rate == pytest.approx(4 / 6)
    assert result.wilson == wilson_ci(4, 6)
    graded = [(c, p) for c, p in zip(correct, clusters, strict=True) if c is not None]
    assert result.bootstrap == cluster_bootstrap_ci(
        [c for c, _ in graded], [p for _, p in graded], n_boot=300, seed=1
    )
    assert result.bootstrap[0] <= result.rate <= result.bootstrap[1]


def test_concordance_patients_with_only_ungraded_items_drop_out() -> None:
    correct, clusters = _clustered(30, 3, 0.6, 12)
    with_extra = concordance([*correct, None, None], [*clusters, "ghost", "ghost"])
    plain = concordance(correct, clusters)
    assert with_extra.ungraded == 2
    assert with_extra.model_dump(exclude={"ungraded"}) == plain.model_dump(exclude={"ungraded"})


def test_concordance_with_nothing_graded() -> None:
    result = concordance([None, None], ["a", "b"])
    assert result == Concordance(
        n=0, correct=0, rate=0.0, wilson=(0.0, 1.0), bootstrap=(0.0, 1.0), ungraded=2
    )
    assert concordance([], []).n == 0


def test_concordance_passes_alpha_to_both_intervals() -> None:
    correct, clusters = _clustered(40, 3, 0.5, 13)
    wide = concordance(correct, clusters, alpha=0.01)
    narrow = concordance(correct, clusters, alpha=0.2)
    assert wide.wilson[1] - wide.wilson[0] > narrow.wilson[1] - narrow.wilson[0]
    assert wide.bootstrap[1] - wide.bootstrap[0] > narrow.bootstrap[1] - narrow.bootstrap[0]


def test_concordance_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"correct\[1\] must be True, False or None, got str"):
        concordance([True, "ungraded"], ["a", "b"])
    with pytest.raises(ValueError, match="correct and clusters must have the same length"):
        concordance([True, None], ["a"])
    with pytest.raises(ValueError, match="alpha must be a number strictly between 0 and 1"):
        concordance([True], ["a"], alpha=0)
