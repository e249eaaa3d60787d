"""Lab values of one simulated patient: the paraprotein course and everything it drives.

The latent course becomes a paraprotein trajectory (serum M-protein, or the involved free light
chain in light-chain-only disease): a fall to a nadir set by the intended response of each
line, a plateau, and a rise to progression. Lab draws are dense during therapy and sparse in
remission; every draw is a panel. Responses and progression dates are then read off the
*measured* values with the IMWG rules, so the gold facts agree with what the labs show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from recordagent.sources.synthetic.course import Course
from recordagent.sources.synthetic.imwg import LineResponse, Measurement, classify_line
from recordagent.sources.synthetic.vocabulary import ANALYTES

__all__ = ["PatientLabs", "simulate_labs"]

_EPOCH = dt.date(1970, 1, 1)
DETECTION_LIMIT = 0.05  # g/dL: smaller M-spikes are reported "not detected"
_NORMAL_KAPPA, _NORMAL_LAMBDA = 12.0, 15.0


@dataclass
class PatientLabs:
    """One patient's labs and what they show."""

    frame: pl.DataFrame  # bundle rows, ids assigned
    responses: list[LineResponse]  # per therapy line, read off the measured values
    diagnosis: dict[str, tuple[str, float | None, str | None]]  # key -> (lab id, value, unit)
    draws: npt.NDArray[np.int64]  # draw days (days since 1970-01-01)
    bone_marrow: list[tuple[dt.date, int, str]]  # (date, plasma-cell %, lab id)


def _ordinal(day: dt.date) -> int:
    return (day - _EPOCH).days


def _date(ordinal: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(ordinal))


def _trajectory(
    rng: np.random.Generator, course: Course
) -> tuple[list[int], list[float], list[float], list[int]]:
    """Knots of the disease course, and the day each line reaches its nadir.

    Knots are (day, serum M-protein g/dL, involved-FLC excess mg/L).
    """
    light_chain = course.isotype == "light chain"
    marker0 = course.burden
    excess0 = marker0 if light_chain else float(rng.lognormal(np.log(250), 0.7))
    scale = excess0 / marker0
    residual_cr = rng.uniform(25, 45) if course.light_chain == "kappa" else rng.uniform(45, 70)
    dx = _ordinal(course.diagnosis_date)
    nadir_days: list[int] = []
    days, marker = [dx - 60, dx], [marker0 * 0.85, marker0]
    excess = [excess0 * 0.85, excess0]
    current = marker0
    for i, line in enumerate(course.lines):
        start = _ordinal(line.start)
        nxt = _ordinal(course.lines[i + 1].start) if i + 1 < len(course.lines) else None
        response = line.intended_response
        fraction = {
            "sCR": 0.0,
            "CR": 0.0,
            "VGPR": rng.uniform(0.03, 0.08),
            "PR": rng.uniform(0.15, 0.45),
            "MR": rng.uniform(0.56, 0.72),
            "SD": rng.uniform(0.88, 0.98),
            "PD": 1.0,
        }[response]
        nadir = current * fraction
        nadir_excess = nadir * scale
        if response == "sCR" or (light_chain and response == "CR"):
            nadir, nadir_excess = (0.0 if not light_chain else rng.uniform(0, 3)), rng.uniform(0, 3)
        elif response == "CR":
            nadir, nadir_excess = 0.0, residual_cr
        if light_chain:
            nadir = nadir_excess
        car_t = line.regimen.key in ("ide-cel", "cilta-cel")
        to_nadir = int(rng.integers(28, 61) if car_t else rng.integers(60, 181))
        days.append(start)
        marker.append(current)
        excess.append(current * scale if not light_chain else current)
        progression = _ordinal(line.progression) if line.progression else None
        if response == "PD":
            to_nadir = 14
        nadir_day = start + to_nadir
        # The nadir comes before the line ends, by progression or by a switch for toxicity.
        stop = progression - 21 if progression is not None else nxt
        if stop is not None and nadir_day >= stop:
            nadir_day = start + max(7, (stop - start) // 2)
        days.append(nadir_day)
        if response != "PD":  # primary refractory disease is first assessed at progression
            nadir_days.append(nadir_day)
        marker.append(nadir)
        excess.append(nadir_excess)
        if progression is not None:
            rise_from = max(nadir_day + 1, progression - int(rng.integers(60, 121)))
            days.append(rise_from)
            marker.append(nadir)
            excess.append(nadir_excess)
            rise = 250.0 if light_chain else 1.0
            peak = max(nadir * 1.6, nadir + rise)
            days.append(progression)
            marker.append(peak)
            excess.append(peak if light_chain else max(nadir_excess * 1.6, peak * scale))
            current = peak * 1.12
            if nxt is not None:
                days.append(max(nxt, progression + 1))
                marker.append(current)
                excess.append(current if light_chain else current * scale)
        else:
            current = nadir
            if nxt is not None:
                days.append(max(nxt, nadir_day + 1))
                marker.append(nadir)
                excess.append(nadir_excess)
    end = _ordinal(course.end_date)
    if days[-1] < end:
        days.append(end)
        marker.append(marker[-1])
        excess.append(excess[-1])
    if light_chain:
        marker = [0.0] * len(marker)
    order = np.argsort(np.asarray(days), kind="stable")
    return (
        [days[k] for k in order],
        [marker[k] for k in order],
        [excess[k] for k in order],
        nadir_days,
    )


def _draw_days(
    rng: np.random.Generator, course: Course, density: float, assessments: list[int] | None = None
) -> npt.NDArray[np.int64]:
    """Days of lab draws: dense early in each line, monthly on therapy, sparse in remission.

    ``assessments`` are days that always get a draw (the response assessment at each nadir).
    """
    stretch = 1.0 / (course.intensity * density)
    dx = _ordinal(course.diagnosis_date)
    end = _ordinal(course.end_date)
    fixed = {dx, end, *(assessments or [])}
    segments: list[tuple[int, int, float]] = []
    for i, line in enumerate(course.lines):
        start, stop = _ordinal(line.start), _ordinal(line.end)
        nxt = _ordinal(course.lines[i + 1].start) if i + 1 < len(course.lines) else end
        fixed.add(start)
        # The myeloma panel is checked before each of the first three cycles, whatever the
        # patient's visit rhythm: that is when responses are assessed.
        limit = _ordinal(line.progression) if line.progression else nxt
        fixed.update(day for day in (start + 28, start + 56, start + 84) if day < limit)
        if line.progression:
            fixed.add(_ordinal(line.progression))
        if line.asct_date:
            fixed.add(_ordinal(line.asct_date))
        early = min(stop, start + 180)
        segments += [(start, early, 14.0), (early, stop, 28.0), (stop, nxt, 56.0)]
    days = set(fixed)
    for first, last, interval in segments:
        step = float(np.clip(interval * stretch, 7.0, 150.0))
        if last - first < step:
            continue
        points = np.arange(first + step, last, step)
        jitter = rng.integers(-3, 4, size=len(points))
        days.update(int(p) for p in np.clip(points + jitter, first + 1, last - 1))
    return np.asarray(sorted(d for d in days if dx <= d <= end), dtype=np.int64)


def count_draws(rng: np.random.Generator, course: Course, density: float) -> int:
    """About how many draws the patient has at ``density`` (for calibrating a cohort).

    The nadir assessments are placed four months into each line here; the real ones depend on
    the trajectory, drawn later.
    """
    assessments = [_ordinal(line.start) + 120 for line in course.lines]
    return len(_draw_days(rng, course, density, assessments))


def _egfr(creatinine: npt.NDArray[np.float64], age: float, female: bool) -> npt.NDArray[np.float64]:
    """CKD-EPI 2021 (race-free) estimated GFR."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine / kappa
    gfr = (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.200
        * 0.9938**age
        * (1.012 if female else 1.0)
    )
    return np.asarray(gfr, dtype=np.float64)


def _on_therapy(course: Course, days: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    on = np.zeros(len(days), dtype=bool)
    for line in course.lines:
        on |= (days >= _ordinal(line.start)) & (days <= _ordinal(line.end))
    return on


def simulate_labs(rng: np.random.Generator, course: Course, density: float) -> PatientLabs:
    """Render the labs of ``course``; ``density`` scales how often blood is drawn."""
    knot_days, marker_knots, excess_knots, nadir_days = _trajectory(rng, course)
    draws = _draw_days(rng, course, density, nadir_days)
    n = len(draws)
    marker = np.interp(draws, knot_days, marker_knots)
    excess = np.interp(draws, knot_days, excess_knots)
    light_chain = course.isotype == "light chain"
    baseline = course.burden
    # Disease activity relative to diagnosis drives the labs that follow the tumour burden.
    activity = np.clip((excess if light_chain else marker) / max(baseline, 1e-9), 0.0, 1.5)
    on = _on_therapy(course, draws)

    def noise(sd: float) -> npt.NDArray[np.float64]:
        return rng.normal(1.0, sd, size=n)

    dx = _ordinal(course.diagnosis_date)
    female = course.sex == "female"
    age = (course.diagnosis_date - course.birth_date).days / 365.25
    values: dict[str, npt.NDArray[np.float64]] = {}

    measured_m = marker * noise(0.03)
    values["mprotein"] = np.where(marker < DETECTION_LIMIT, np.nan, measured_m)
    suppression = np.clip(1 - 0.75 * np.minimum(activity, 1.0), 0.25, 1.0)
    involved = (_NORMAL_KAPPA if course.light_chain == "kappa" else _NORMAL_LAMBDA) + excess
    uninvolved = (_NORMAL_LAMBDA if course.light_chain == "kappa" else _NORMAL_KAPPA) * suppression
    involved, uninvolved = involved * noise(0.04), uninvolved * noise(0.04)
    kappa, lam = (involved, uninvolved) if course.light_chain == "kappa" else (uninvolved, involved)
    values["kappa"], values["lambda"] = np.round(kappa, 1), np.round(lam, 1)
    values["ratio"] = _significant(values["kappa"] / values["lambda"], 3)

    background = {"igg": 10.5, "iga": 2.2, "igm": 1.0}
    for key, normal in background.items():
        level = normal * suppression * noise(0.06)
        if course.isotype == {"igg": "IgG", "iga": "IgA"}.get(key):
            level = level + marker * 10.0  # the M-spike is the involved immunoglobulin
        values[key] = level

    cr_dx = rng.uniform(2.1, 5.5) if course.crab["renal impairment"] else rng.uniform(0.7, 1.15)
    cr_floor = (
        rng.uniform(0.7, 1.1) if not course.crab["renal impairment"] else rng.uniform(1.1, 1.8)
    )
    creatinine = (cr_floor + (cr_dx - cr_floor) * np.minimum(activity, 1.0)) * noise(0.05)
    values["creatinine"] = creatinine
    values["egfr"] = _egfr(np.round(creatinine, 2), age, female)

    ca_dx = rng.uniform(11.2, 13.6) if course.crab["hypercalcaemia"] else rng.uniform(8.9, 10.1)
    values["calcium"] = 9.4 + (ca_dx - 9.4) * np.minimum(activity, 1.0) + rng.normal(0, 0.2, n)

    alb_dx, b2m_dx = _iss_markers(rng, course.iss)
    values["albumin"] = 4.1 + (alb_dx - 4.1) * np.minimum(activity, 1.0) + rng.normal(0, 0.1, n)
    values["b2m"] = (1.9 + (b2m_dx - 1.9) * np.minimum(activity, 1.0)) * noise(0.05)
    ldh_dx = rng.uniform(260, 620) if course.ldh_high else rng.uniform(140, 215)
    values["ldh"] = (170 + (ldh_dx - 170) * np.minimum(activity, 1.0)) * noise(0.06)

    hb_normal = 13.4 if female else 14.6
    hb_dx = rng.uniform(7.4, 9.8) if course.crab["anaemia"] else rng.uniform(10.4, 12.6)
    values["hemoglobin"] = (
        hb_normal
        - (hb_normal - hb_dx) * np.minimum(activity, 1.0)
        - 0.6 * on
        + rng.normal(0, 0.3, n)
    )
    values["platelets"] = (240 - 70 * np.minimum(activity, 1.0) - 40 * on) * noise(0.12)
    values["neutrophils"] = (4.2 - 1.2 * on) * noise(0.2)
    for ae in course.adverse_events:
        hit = (draws >= _ordinal(ae.date)) & (draws <= _ordinal(ae.date) + 21)
        if ae.kind in ("neutropenia", "febrile neutropenia"):
            values["neutrophils"] = np.where(hit, rng.uniform(0.2, 0.9, n), values["neutrophils"])
        elif ae.kind == "thrombocytopenia":
            values["platelets"] = np.where(hit, rng.uniform(12, 48, n), values["platelets"])
    at_dx = draws == dx
    for key, value in (
        ("creatinine", cr_dx),
        ("calcium", ca_dx),
        ("albumin", alb_dx),
        ("b2m", b2m_dx),
        ("ldh", ldh_dx),
        ("hemoglobin", hb_dx),
    ):
        values[key] = np.where(at_dx, value, values[key])
    values["egfr"] = np.where(
        at_dx, _egfr(np.round(values["creatinine"], 2), age, female), values["egfr"]
    )

    # Panels: the myeloma panel, blood count and chemistry at every draw; immunoglobulins at
    # every other draw; LDH and beta-2 microglobulin at diagnosis, line starts and every 4th.
    index = np.arange(n)
    line_starts = {_ordinal(line.start) for line in course.lines}
    key_draw = at_dx | np.isin(draws, list(line_starts))
    measured = {key: np.ones(n, dtype=bool) for key in values}
    for key in ("igg", "iga", "igm"):
        measured[key] = key_draw | (index % 2 == 0)
    for key in ("ldh", "b2m"):
        measured[key] = key_draw | (index % 4 == 0)

    switch = None
    if rng.random() < 0.12 and n > 8:
        switch = _date(int(draws[int(rng.integers(n // 4, n // 2))]))
    rows = _rows(course, draws, values, measured, switch)
    bone_marrow = _bone_marrow_rows(rng, course, draws, marker, excess)
    frame = pl.concat([rows, bone_marrow], how="vertical") if bone_marrow.height else rows
    frame = _with_quirks(rng, frame, dx)
    frame = frame.sort(["time", "analyte_code", "flag"], nulls_last=False, maintain_order=True)
    frame = frame.with_columns(
        pl.format(
            "{}-L{}",
            pl.lit(course.patient_id),
            pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(5),
        ).alias("lab_id")
    )
    responses = _responses(course, frame)
    diagnosis = {
        key: (str(row["lab_id"]), row["value_num"], row["unit"])
        for key, row in _diagnosis_rows(frame, course.diagnosis_date).items()
    }
    bm = frame.filter(pl.col("analyte_code") == "BMPC").select("time", "value_num", "lab_id").rows()
    return PatientLabs(
        frame=frame,
        responses=responses,
        diagnosis=diagnosis,
        draws=draws,
        bone_marrow=[(t.date(), int(v), i) for t, v, i in bm],
    )


def _significant(values: npt.NDArray[np.float64], digits: int) -> npt.NDArray[np.float64]:
    """Rounded to ``digits`` significant digits, as ratios are reported (0.0042, 1.27, 35.4)."""
    magnitude = np.floor(np.log10(np.maximum(np.abs(values), 1e-12)))
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.asarray(np.round(values * scale) / scale, dtype=np.float64)


def _iss_markers(rng: np.random.Generator, iss: int) -> tuple[float, float]:
    """Albumin (g/dL) and beta-2 microglobulin (mg/L) at diagnosis consistent with the ISS."""
    if iss == 1:
        return rng.uniform(3.6, 4.6), rng.uniform(1.6, 3.3)
    if iss == 3:
        return rng.uniform(2.6, 4.0), rng.uniform(5.7, 14.0)
    if rng.random() < 0.6:
        return rng.uniform(2.8, 4.4), rng.uniform(3.6, 5.3)
    return rng.uniform(2.7, 3.35), rng.uniform(1.8, 3.3)


def _rows(
    course: Course,
    draws: npt.NDArray[np.int64],
    values: dict[str, npt.NDArray[np.float64]],
    measured: dict[str, npt.NDArray[np.bool_]],
    switch: dt.date | None,
) -> pl.DataFrame:
    # Draw times: early morning outpatient phlebotomy; minutes vary.
    minutes = (draws * 37) % 150 + 7 * 60 + 15
    times = draws.astype("datetime64[D]").astype("datetime64[m]") + minutes.astype("timedelta64[m]")
    frames = []
    switch_day = np.datetime64(switch, "D") if switch else None
    for key, series in values.items():
        analyte = ANALYTES[key]
        keep = measured[key]
        value = np.round(series[keep].astype(float), analyte.decimals)
        when = times[keep]
        unit = np.full(len(value), analyte.unit, dtype=object)
        text = np.full(len(value), None, dtype=object)
        low = np.full(len(value), analyte.ref_low if analyte.ref_low is not None else np.nan)
        high = np.full(len(value), analyte.ref_high if analyte.ref_high is not None else np.nan)
        if key == "mprotein":
            missing = np.isnan(value)
            text[missing] = "not detected"
            if switch_day is not None:
                early = when.astype("datetime64[D]") < switch_day
                value = np.where(early & ~missing, np.round(value * 10, 1), value)
                unit[early] = "g/L"
        flag = np.full(len(value), None, dtype=object)
        flag[value > high] = "H"
        flag[value < low] = "L"
        frames.append(
            pl.DataFrame(
                {
                    "patient_id": course.patient_id,
                    "time": pl.Series(when.astype("datetime64[us]")),
                    "analyte_code": analyte.code,
                    "analyte_name": analyte.name,
                    "value_num": pl.Series(value, dtype=pl.Float64).fill_nan(None),
                    "value_text": pl.Series(text.tolist(), dtype=pl.String),
                    "unit": pl.Series(unit.tolist(), dtype=pl.String),
                    "ref_low": pl.Series(low, dtype=pl.Float64).fill_nan(None),
                    "ref_high": pl.Series(high, dtype=pl.Float64).fill_nan(None),
                    "flag": pl.Series(flag.tolist(), dtype=pl.String),
                }
            )
        )
    return pl.concat(frames, how="vertical")


def _bone_marrow_rows(
    rng: np.random.Generator,
    course: Course,
    draws: npt.NDArray[np.int64],
    marker: npt.NDArray[np.float64],
    excess: npt.NDArray[np.float64],
) -> pl.DataFrame:
    """Bone-marrow plasma-cell % at diagnosis, at each relapse and after deep responses."""
    dates = [course.diagnosis_date]
    for line in course.lines:
        if line.progression and rng.random() < 0.5:
            dates.append(line.progression)
        if line.intended_response in ("sCR", "CR") and line.start + dt.timedelta(days=200) < (
            line.progression or course.end_date
        ):
            dates.append(line.start + dt.timedelta(days=200))
    activity = np.clip(
        (excess if course.isotype == "light chain" else marker) / max(course.burden, 1e-9), 0, 1.5
    )
    rows = []
    for day in dict.fromkeys(dates):
        k = int(np.searchsorted(draws, _ordinal(day)))
        level = activity[min(k, len(activity) - 1)]
        percent = (
            course.bm_plasma_cells
            if day == course.diagnosis_date
            else (int(np.clip(round(course.bm_plasma_cells * level + rng.uniform(0, 3)), 1, 95)))
        )
        if day != course.diagnosis_date and level < 0.02:
            percent = int(rng.integers(1, 4))
        rows.append((dt.datetime.combine(day, dt.time(10, 30)), float(percent)))
    analyte = ANALYTES["bmpc"]
    return pl.DataFrame(
        {
            "patient_id": course.patient_id,
            "time": pl.Series([r[0] for r in rows], dtype=pl.Datetime("us")),
            "analyte_code": analyte.code,
            "analyte_name": analyte.name,
            "value_num": pl.Series([r[1] for r in rows], dtype=pl.Float64),
            "value_text": pl.Series([None] * len(rows), dtype=pl.String),
            "unit": analyte.unit,
            "ref_low": pl.Series([None] * len(rows), dtype=pl.Float64),
            "ref_high": pl.Series([5.0] * len(rows), dtype=pl.Float64),
            "flag": pl.Series(["H" if r[1] > 5 else None for r in rows], dtype=pl.String),
        }
    )


_CORRECTABLE = ("718-7", "2160-0", "17861-6", "777-3", "1751-7")


def _with_quirks(rng: np.random.Generator, frame: pl.DataFrame, dx: int) -> pl.DataFrame:
    """Duplicated rows, and wrong values followed by a flagged correction."""
    n = frame.height
    duplicate = rng.random(n) < 0.004
    correct = (
        (rng.random(n) < 0.002)
        & frame["analyte_code"].is_in(_CORRECTABLE).to_numpy()
        & (frame["time"].dt.date().to_physical().to_numpy() != dx)
        & frame["value_num"].is_not_null().to_numpy()
    )
    extra = [frame.filter(pl.Series(duplicate))]
    if correct.any():
        # The first report is off by a factor of ten; the correction follows with a flag.
        wrong_factor = np.where(rng.random(n) < 0.5, 10.0, 0.1)
        corrected = frame.filter(pl.Series(correct)).with_columns(pl.lit("corrected").alias("flag"))
        frame = frame.with_columns(
            pl.when(pl.Series(correct))
            .then(pl.col("value_num") * pl.Series(wrong_factor))
            .otherwise(pl.col("value_num"))
            .alias("value_num")
        )
        extra.append(corrected)
    return pl.concat([frame, *extra], how="vertical")


def _assessments(course: Course, frame: pl.DataFrame) -> list[Measurement]:
    """Response assessments (one per draw with a myeloma panel) from the rendered rows."""
    codes = ("33358-4", "36916-5", "33944-1", "48378-4")
    panel = (
        frame.filter(pl.col("analyte_code").is_in(codes))
        .unique(subset=["time", "analyte_code"], keep="first", maintain_order=True)
        .with_columns(
            pl.when(pl.col("unit") == "g/L")
            .then(pl.col("value_num") / 10)
            .otherwise(pl.col("value_num"))
            .alias("value")
        )
        .pivot(
            on="analyte_code", index="time", values=["value", "lab_id"], aggregate_function="first"
        )
        .sort("time")
    )
    out = []
    kappa_type = course.light_chain == "kappa"
    for row in panel.iter_rows(named=True):
        kappa, lam = row["value_36916-5"], row["value_33944-1"]
        ids: tuple[str, ...]
        if course.isotype == "light chain":
            value = abs(kappa - lam) if kappa_type else abs(lam - kappa)
            ids = (row["lab_id_36916-5"], row["lab_id_33944-1"], row["lab_id_48378-4"])
        else:
            value = row["value_33358-4"] or 0.0
            ids = (row["lab_id_33358-4"], row["lab_id_48378-4"])
        out.append(Measurement(row["time"].date(), float(value), float(row["value_48378-4"]), ids))
    return out


def _responses(course: Course, frame: pl.DataFrame) -> list[LineResponse]:
    assessments = _assessments(course, frame)
    light_chain = course.isotype == "light chain"
    out = []
    for i, line in enumerate(course.lines):
        stop = course.lines[i + 1].start if i + 1 < len(course.lines) else course.end_date
        before = [m for m in assessments if m.date <= line.start]
        during = [m for m in assessments if line.start < m.date <= stop]
        baseline = before[-1] if before else assessments[0]
        out.append(classify_line(baseline, during, light_chain))
    return out


def _diagnosis_rows(frame: pl.DataFrame, diagnosis: dt.date) -> dict[str, dict[str, Any]]:
    at_dx = frame.filter(pl.col("time").dt.date() == diagnosis).unique(
        subset=["analyte_code"], keep="first", maintain_order=True
    )
    by_code = {a.code: a.key for a in ANALYTES.values()}
    return {by_code[row["analyte_code"]]: row for row in at_dx.iter_rows(named=True)}
