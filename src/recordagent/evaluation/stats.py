"""Statistics of an evaluation: intervals, paired tests, multiplicity, agreement, deciles.

Pure functions of plain sequences. The binomial tail of McNemar's test is computed with exact
integer arithmetic and the normal quantile comes from :class:`statistics.NormalDist`, so the
library needs only numpy here; the tests check every statistic against statsmodels and scipy.

Every function validates its inputs and raises :class:`ValueError` naming the argument and what
is wrong with it (unequal lengths, ``alpha`` outside (0, 1), a value of the wrong kind).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections import Counter
from collections.abc import Hashable, Sequence
from fractions import Fraction
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Concordance",
    "McNemar",
    "cluster_bootstrap_ci",
    "cohen_kappa",
    "concordance",
    "deciles",
    "holm",
    "mcnemar",
    "percent_agreement",
    "wilson_ci",
]

# Bootstrap resamples are drawn in blocks of at most this many cluster draws, so memory stays
# bounded (~32 MB of int64 indices) however many clusters and resamples are asked for.
_BOOT_BLOCK_DRAWS = 4_000_000


class McNemar(BaseModel):
    """Exact McNemar test of two systems answering the same items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    b: int = Field(ge=0, description="Discordant items system A got right and system B wrong.")
    c: int = Field(ge=0, description="Discordant items system A got wrong and system B right.")
    p_exact: float = Field(
        ge=0.0, le=1.0, description="Two-sided exact p: binomial test of b out of b + c at 1/2."
    )
    p_midp: float = Field(
        ge=0.0,
        le=1.0,
        description="Two-sided mid-p: the exact p minus the point probability of the observed "
        "count (less conservative; Fagerland et al. 2013).",
    )


class Concordance(BaseModel):
    """Proportion of graded items answered correctly, with two 95%-style intervals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(ge=0, description="Graded items (ungraded items are not counted).")
    correct: int = Field(ge=0, description="Graded items scored correct.")
    rate: float = Field(
        ge=0.0, le=1.0, description="correct / n; 0.0 when nothing was graded (n == 0)."
    )
    wilson: tuple[float, float] = Field(
        description="Wilson score interval of the rate (items treated as independent)."
    )
    bootstrap: tuple[float, float] = Field(
        description="Percentile interval of the rate from resampling patients (clusters)."
    )
    ungraded: int = Field(ge=0, description="Items left ungraded, excluded from n.")


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``.

    The same arithmetic as ``statsmodels.stats.proportion.proportion_confint(k, n, alpha,
    method="wilson")``: with ``z`` the ``1 - alpha/2`` normal quantile and ``p = k / n``,
    centre ``(p + z²/2n) / (1 + z²/n)`` and half-width
    ``z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)``. The bounds are clipped to [0, 1] and are
    exactly 0 when ``k == 0`` and exactly 1 when ``k == n`` (rounding could otherwise leave
    them a hair outside).

    Args:
        k: Successes, ``0 <= k <= n``.
        n: Trials, ``n >= 0``. With ``n == 0`` there is no information and ``(0.0, 1.0)`` is
            returned.
        alpha: One minus the coverage, in (0, 1).

    Returns:
        ``(lower, upper)``.

    Raises:
        ValueError: ``k`` or ``n`` not whole numbers, ``k`` outside ``[0, n]``, or ``alpha``
            outside (0, 1).
    """
    _check_alpha(alpha)
    k = _whole(k, "k")
    n = _whole(n, "n")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n={n}, got {k}")
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    z2 = z * z
    p = k / n
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    lower = 0.0 if k == 0 else max(0.0, centre - half)
    upper = 1.0 if k == n else min(1.0, centre + half)
    return (lower, upper)


def cluster_bootstrap_ci(
    correct: Sequence[bool],
    clusters: Sequence[str],
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a proportion, resampling clusters (patients).

    Items about the same patient are not independent (one hard record sinks several answers),
    so whole patients are drawn with replacement, as many as there are, and the proportion of
    each resample is the ratio ``sum(correct) / sum(items)`` over the drawn patients. The
    interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles (numpy's linear interpolation) of
    ``n_boot`` such proportions.

    Items are aggregated per cluster with the clusters in sorted order before any draw, so the
    result depends on the data and ``seed`` only, not on the order of the items. The draws use
    ``numpy.random.default_rng(seed)`` and are vectorised in blocks.

    Args:
        correct: Per item, whether it was answered correctly (``bool`` or ``numpy.bool_``).
        clusters: Per item, the cluster (patient id) it belongs to.
        alpha: One minus the coverage, in (0, 1).
        n_boot: Number of resamples, >= 1.
        seed: Seed of the random generator, >= 0.

    Returns:
        ``(lower, upper)``; ``(0.0, 1.0)`` when there are no items. With a single cluster every
        resample is the data itself and the interval collapses to the observed proportion.

    Raises:
        ValueError: Unequal lengths, non-bool ``correct`` values, non-string clusters, or an
            out-of-range ``alpha``, ``n_boot`` or ``seed``.
    """
    _check_alpha(alpha)
    n_boot = _whole(n_boot, "n_boot")
    seed = _whole(seed, "seed")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    _check_same_length(correct, clusters, "correct", "clusters")
    flags = _bool_array(correct, "correct")
    codes = _cluster_codes(clusters)
    if flags.size == 0:
        return (0.0, 1.0)

    n_clusters = int(codes.max()) + 1
    right = np.bincount(codes, weights=flags, minlength=n_clusters)
    size = np.bincount(codes, minlength=n_clusters).astype(np.float64)

    rng = np.random.default_rng(seed)
    rates = np.empty(n_boot, dtype=np.float64)
    block = max(1, _BOOT_BLOCK_DRAWS // n_clusters)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        drawn = rng.integers(0, n_clusters, size=(stop - start, n_clusters))
        # Every cluster holds at least one item, so the denominator is never 0.
        rates[start:stop] = right[drawn].sum(axis=1) / size[drawn].sum(axis=1)
    lower, upper = np.quantile(rates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lower), float(upper))


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> McNemar:
    """Exact (and mid-p) McNemar test of two systems scored on the same items.

    ``a[i]`` and ``b[i]`` say whether system A and system B answered item ``i`` correctly. Only
    the discordant items count: ``b`` = A right and B wrong, ``c`` = A wrong and B right. Under
    the null hypothesis (the systems are equally accurate) ``b ~ Binomial(b + c, 1/2)``. With
    ``m = min(b, c)`` and ``X ~ Binomial(b + c, 1/2)``:

    * exact p  = ``min(1, 2·P(X <= m))`` (as statsmodels ``mcnemar(exact=True)`` and scipy
      ``binomtest(b, b + c).pvalue``);
    * mid-p    = ``min(1, 2·P(X <= m) - P(X = m))``, i.e. the exact p (before capping) minus
      the point probability of the observed count, which is ``2·P(X < m) + P(X = m)``. When
      ``b == c`` it is exactly 1 by symmetry.

    Example: ``b = 1, c = 5`` gives ``P(X <= 1) = (1 + 6) / 64``, exact p ``= 14/64 = 0.21875``
    and mid-p ``= 14/64 - 6/64 = 0.125``. When ``b + c == 0`` both p-values are 1.

    The binomial sums are exact integers (``math.comb`` over ``2**(b + c)``), so there is no
    rounding until the final conversion to float.

    Args:
        a: Per item, whether system A was right.
        b: Per item, whether system B was right (same items, same order).

    Returns:
        The discordant counts and both p-values.

    Raises:
        ValueError: Unequal lengths or non-bool values.
    """
    _check_same_length(a, b, "a", "b")
    right_a = _bool_array(a, "a")
    right_b = _bool_array(b, "b")
    only_a = int(np.count_nonzero(right_a & ~right_b))
    only_b = int(np.count_nonzero(~right_a & right_b))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemar(b=0, c=0, p_exact=1.0, p_midp=1.0)
    m = min(only_a, only_b)
    point = math.comb(discordant, m)
    tail = sum(math.comb(discordant, i) for i in range(m + 1))
    total = 2**discordant
    p_exact = min(Fraction(1), Fraction(2 * tail, total))
    p_midp = min(Fraction(1), Fraction(2 * tail - point, total))
    return McNemar(b=only_a, c=only_b, p_exact=float(p_exact), p_midp=float(p_midp))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the order given.

    With the ``m`` p-values sorted ascending as ``p(1) <= ... <= p(m)``, the adjusted value of
    ``p(i)`` is ``max over j <= i of min(1, (m - j + 1)·p(j))`` — the running maximum makes the
    adjusted values monotone in the raw ones. Same as statsmodels
    ``multipletests(pvalues, method="holm")[1]``. Rejecting where the adjusted p is below
    ``alpha`` controls the family-wise error rate at ``alpha``.

    Args:
        pvalues: Raw p-values, each in [0, 1]; may be empty.

    Returns:
        Adjusted p-values, each >= its raw value and <= 1, in the input order.

    Raises:
        ValueError: A p-value that is NaN or outside [0, 1].
    """
    raw = np.asarray(pvalues, dtype=np.float64)
    if raw.ndim != 1:
        raise ValueError(f"pvalues must be a flat sequence, got shape {raw.shape}")
    bad = np.flatnonzero(~((raw >= 0.0) & (raw <= 1.0)))  # also catches NaN
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"pvalues[{i}] must be in [0, 1], got {raw[i]!r}")
    m = raw.size
    order = np.argsort(raw, kind="stable")
    stepped = np.maximum.accumulate(raw[order] * np.arange(m, 0, -1, dtype=np.float64))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(p) for p in adjusted]


def cohen_kappa(r1: Sequence[Hashable], r2: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters' categorical labels of the same items.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed agreement and ``p_e`` the
    agreement expected by chance from each rater's marginal frequencies,
    ``sum over categories of (n1[k] / n)·(n2[k] / n)``. Computed with integer counts as
    ``(n·agree - S) / (n² - S)``, ``S = sum n1[k]·n2[k]``; the value equals statsmodels
    ``cohens_kappa`` of the k×k table of the two raters.

    Both raters constant and equal (everyone says "yes") makes ``p_e = p_o = 1`` and kappa
    0/0. This function returns 1.0 there: the raters agree on every item and there is no
    disagreement for chance to explain, and a NaN would silently poison report tables and
    averages. (It is then a statement about agreement only — such data cannot show that the
    raters would also agree on a mixed set.) One constant rater and one that varies is not this
    case and gives an ordinary value (0 or below).

    Args:
        r1: Labels of rater 1 (categories; compared by equality and hash, so ``None`` works
            but lists must be turned into tuples).
        r2: Labels of rater 2 for the same items, same order.

    Returns:
        Kappa in [-1, 1].

    Raises:
        ValueError: Unequal lengths, no items, or an unhashable label.
    """
    n, agree = _paired_agreement(r1, r2)
    count1 = Counter(r1)
    count2 = Counter(r2)
    chance = sum(count1[k] * count2.get(k, 0) for k in count1)
    if chance == n * n:
        return 1.0
    return (n * agree - chance) / (n * n - chance)


def percent_agreement(r1: Sequence[Hashable], r2: Sequence[Hashable]) -> float:
    """Fraction of items on which the two raters give equal labels.

    Args:
        r1: Labels of rater 1.
        r2: Labels of rater 2 for the same items, same order.

    Returns:
        Agreement in [0, 1].

    Raises:
        ValueError: Unequal lengths, no items, or an unhashable label.
    """
    n, agree = _paired_agreement(r1, r2)
    return agree / n


def deciles(values: Sequence[float]) -> list[int]:
    """Decile (1..10) of each value by its rank among all the values.

    The decile of ``v`` is ``floor(10·L / n) + 1`` where ``L`` is the number of values strictly
    smaller than ``v`` — the rank of the first of its ties. So tied values always share a
    decile (the lowest one their block of ties reaches), the smallest value is in decile 1, and
    when ``n`` is a multiple of 10 with distinct values each decile holds exactly ``n / 10``
    values. With ``n < 10`` the deciles are spread out (n = 4 gives 1, 3, 6, 8) and some are
    empty; with all values equal every value is in decile 1.

    Args:
        values: Numbers to rank, e.g. record lengths in tokens; may be empty.

    Returns:
        Per value, its decile, in the input order.

    Raises:
        ValueError: A value that is NaN (it has no rank).
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(f"values must be a flat sequence, got shape {data.shape}")
    nan = np.flatnonzero(np.isnan(data))
    if nan.size:
        raise ValueError(f"values[{int(nan[0])}] is NaN; deciles need orderable numbers")
    n = data.size
    if n == 0:
        return []
    below = np.searchsorted(np.sort(data), data, side="left")
    return [int(d) for d in (10 * below) // n + 1]


def concordance(
    correct: Sequence[bool | None],
    clusters: Sequence[str],
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> Concordance:
    """Concordance (proportion correct) of graded items with Wilson and patient-bootstrap CIs.

    ``None`` marks an ungraded item: it is left out of ``n``, ``correct`` and both intervals and
    counted in ``ungraded``. Patients whose items are all ungraded therefore drop out of the
    bootstrap (they carry no graded item to resample).

    When nothing is graded (``n == 0``) the result is defined without NaN: ``rate`` 0.0 and
    both intervals ``(0.0, 1.0)`` — "no information" — so reports can render it; check ``n``
    before reading the rate.

    Args:
        correct: Per item, True/False when graded, None when ungraded.
        clusters: Per item, the patient id (the bootstrap's resampling unit).
        alpha: One minus the coverage of both intervals, in (0, 1).
        n_boot: Bootstrap resamples, >= 1.
        seed: Seed of the bootstrap's random generator, >= 0.

    Returns:
        The counts, rate and intervals.

    Raises:
        ValueError: Unequal lengths, values other than bool/None, non-string clusters, or an
            out-of-range ``alpha``, ``n_boot`` or ``seed``.
    """
    _check_alpha(alpha)
    _check_same_length(correct, clusters, "correct", "clusters")
    graded_flags: list[bool] = []
    graded_clusters: list[str] = []
    ungraded = 0
    for i, (flag, cluster) in enumerate(zip(correct, clusters, strict=True)):
        if flag is None:
            ungraded += 1
            continue
        if not isinstance(flag, bool | np.bool_):
            raise ValueError(
                f"correct[{i}] must be True, False or None, got {type(flag).__name__} {flag!r}"
            )
        graded_flags.append(bool(flag))
        graded_clusters.append(cluster)
    n = len(graded_flags)
    k = sum(graded_flags)
    bootstrap = cluster_bootstrap_ci(
        graded_flags, graded_clusters, alpha=alpha, n_boot=n_boot, seed=seed
    )
    return Concordance(
        n=n,
        correct=k,
        rate=k / n if n else 0.0,
        wilson=wilson_ci(k, n, alpha),
        bootstrap=bootstrap,
        ungraded=ungraded,
    )


def _check_alpha(alpha: float) -> None:
    # `not (0 < alpha < 1)` is also true for NaN, which must be refused too.
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")


def _whole(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a whole number, got {type(value).__name__} {value!r}"
        ) from None


def _check_same_length(first: Sequence[Any], second: Sequence[Any], one: str, two: str) -> None:
    if len(first) != len(second):
        raise ValueError(
            f"{one} and {two} must have the same length, got {len(first)} and {len(second)}"
        )


def _bool_array(values: Sequence[Any], name: str) -> npt.NDArray[np.bool_]:
    # Refuse truthy non-bools (e.g. a score state "incorrect") rather than count them as True.
    for i, value in enumerate(values):
        if not isinstance(value, bool | np.bool_):
            raise ValueError(
                f"{name}[{i}] must be True or False, got {type(value).__name__} {value!r}"
            )
    return np.fromiter(values, dtype=np.bool_, count=len(values))


def _cluster_codes(clusters: Sequence[str]) -> npt.NDArray[np.intp]:
    for i, cluster in enumerate(clusters):
        if not isinstance(cluster, str):
            raise ValueError(
                f"clusters[{i}] must be a string (patient id), got "
                f"{type(cluster).__name__} {cluster!r}"
            )
    if not clusters:
        return np.zeros(0, dtype=np.intp)
    # np.unique sorts, so cluster codes (and thus the draws) do not depend on item order.
    _, codes = np.unique(np.asarray(clusters, dtype=np.str_), return_inverse=True)
    return codes.astype(np.intp, copy=False)


def _paired_agreement(r1: Sequence[Hashable], r2: Sequence[Hashable]) -> tuple[int, int]:
    _check_same_length(r1, r2, "r1", "r2")
    if not r1:
        raise ValueError("r1 and r2 are empty; agreement needs at least one rated item")
    for name, labels in (("r1", r1), ("r2", r2)):
        for i, label in enumerate(labels):
            try:
                hash(label)
            except TypeError:
                raise ValueError(
                    f"{name}[{i}] is not hashable ({type(label).__name__} {label!r}); "
                    "turn lists into tuples before comparing labels"
                ) from None
    agree = sum(1 for x, y in zip(r1, r2, strict=True) if x == y)
    return len(r1), agree
