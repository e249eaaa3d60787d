"""IMWG response and progression rules over hand-made assessment series."""

from __future__ import annotations

import datetime as dt

import pytest

from recordagent.sources.synthetic.imwg import Measurement, category, classify_line, progressed

DAY = dt.date(2020, 1, 1)


def series(*values: tuple[float, float]) -> list[Measurement]:
    return [
        Measurement(DAY + dt.timedelta(days=30 * (k + 1)), value, ratio, (f"L{k}",))
        for k, (value, ratio) in enumerate(values)
    ]


BASE = Measurement(DAY, 4.0, 8.0, ("L-base",))


@pytest.mark.parametrize(
    ("value", "ratio", "expected"),
    [
        (0.0, 1.0, "sCR"),
        (0.0, 3.0, "CR"),
        (0.4, 3.0, "VGPR"),  # exactly 90 % lower
        (0.41, 3.0, "PR"),
        (2.0, 3.0, "PR"),  # exactly 50 %
        (2.01, 3.0, "MR"),
        (3.0, 3.0, "MR"),  # exactly 25 %
        (3.01, 3.0, "SD"),
    ],
)
def test_secretory_categories_at_their_boundaries(value: float, ratio: float, expected: str):
    assert category(4.0, Measurement(DAY, value, ratio, ()), light_chain_only=False) == expected


@pytest.mark.parametrize(
    ("value", "ratio", "expected"),
    [(5.0, 1.2, "CR"), (40.0, 9.0, "VGPR"), (200.0, 9.0, "PR"), (300.0, 9.0, "SD")],
)
def test_light_chain_categories_use_dflc_and_the_ratio(value: float, ratio: float, expected: str):
    assert category(400.0, Measurement(DAY, value, ratio, ()), light_chain_only=True) == expected


def test_progression_needs_both_the_relative_and_the_absolute_rise():
    assert not progressed(0.2, 0.6, light_chain_only=False)  # +200 % but only +0.4 g/dL
    assert progressed(0.2, 0.7, light_chain_only=False)
    assert not progressed(3.0, 3.6, light_chain_only=False)  # +0.6 g/dL but only +20 %
    assert progressed(3.0, 3.75, light_chain_only=False)
    assert progressed(0.0, 0.5, light_chain_only=False)  # reappearance after CR
    assert not progressed(50.0, 140.0, light_chain_only=True)
    assert progressed(50.0, 150.0, light_chain_only=True)


def test_best_response_counts_only_assessments_before_progression():
    result = classify_line(
        BASE, series((2.0, 5.0), (0.3, 3.0), (0.3, 3.0), (1.0, 4.0), (1.2, 4.0)), False
    )
    assert result.best == "VGPR"
    assert result.best_date == DAY + dt.timedelta(days=60)
    assert result.best_evidence == ("L1",)
    assert result.progression == DAY + dt.timedelta(days=120)  # 0.3 -> 1.0: +0.7, +233 %
    assert result.progression_evidence == ("L3",)


def test_progression_at_the_first_assessment_is_pd_and_stable_before_it_is_sd():
    at_once = classify_line(BASE, series((5.2, 9.0), (5.6, 9.0)), False)
    assert (at_once.best, at_once.progression) == ("PD", DAY + dt.timedelta(days=30))
    assert at_once.best_evidence == ("L0",)
    stable_then_worse = classify_line(BASE, series((3.8, 8.0), (5.1, 9.0), (5.3, 9.0)), False)
    assert stable_then_worse.best == "SD"
    assert stable_then_worse.progression == DAY + dt.timedelta(days=60)


def test_progression_must_be_confirmed_by_the_next_assessment():
    spike = classify_line(BASE, series((2.0, 5.0), (3.2, 5.0), (2.1, 5.0)), False)
    assert (spike.best, spike.progression) == ("PR", None)  # one high value is noise
    unconfirmed_last = classify_line(BASE, series((2.0, 5.0), (3.2, 5.0)), False)
    assert unconfirmed_last.progression is None


def test_no_assessment_means_no_best_response_date():
    empty = classify_line(BASE, [], False)
    assert (empty.best_date, empty.progression, empty.best_evidence) == (None, None, ())
