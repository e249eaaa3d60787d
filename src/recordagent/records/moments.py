"""Dates and date-times of a bundle table: parsed, converted, checked against the calendar.

ISO 8601 text becomes microsecond date-times (a leap second as second 59.999999, digits below a
microsecond truncated, both counted as warnings); a date-time with a UTC offset (``Z``,
``+01:00``) is refused, or, given a zone, converted to that zone's local time (daylight saving
included; values without an offset are taken as its local time already). Every date, from any
input, must lie within the years 0001-9999, and a DATE column refuses a time of day.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from recordagent.records.problem_log import ProblemLog
from recordagent.records.schema import Column, ColumnType
from recordagent.records.value_rules import OUTSIDE_CALENDAR

__all__ = [
    "CONVERT_OPTION",
    "checked_moments",
    "count_conversions",
    "parse_moments",
    "parse_timestamps",
    "polars_type",
]

_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
# Strict ISO 8601 shapes (polars' parser alone also takes '2021-3-4').
_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
# Second 60 (a leap second, which ISO 8601 and FHIR allow): kept as the minute's last
# microsecond, so the value keeps its day and its order. Python's datetime has no second 60.
_LEAP_SECOND = r"[T ]\d{2}:\d{2}:60(\.\d+)?$"
_LEAP_SECOND_FIELD = r":60(\.\d+)?$"
_LAST_MICROSECOND = ":59.999999"
# A date-time with a UTC offset: 'Z', '+HH:MM', '+HHMM' or '+HH' after the local time.
_WITH_OFFSET = (
    r"^(?<local>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"(?<offset>[Zz]|(?<sign>[+-])(?<hours>\d{2})(?::?(?<minutes>\d{2}))?)$"
)
_OFFSET_END = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"  # what ends every value with an offset
_LARGEST_OFFSET_MINUTES = 18 * 60  # ISO 8601 and every time zone database stay within ±18:00
CONVERT_OPTION = "--convert-timezone ZONE (load.convert_timezone in settings)"
"""How a user asks for offsets to be converted, as refusals name it."""
_BELOW_MICROSECOND = r"\.\d{6}\d*[1-9]"  # a fraction with non-zero digits past the sixth
# The range every store type holds: ISO 8601 years 0001-9999.
_FIRST_DAY, _LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)
_UNITS_PER_DAY = {"ns": 86_400 * 10**9, "us": 86_400 * 10**6, "ms": 86_400 * 10**3}
_INT64 = (-(2**63), 2**63 - 1)


def polars_type(col: Column) -> pl.DataType:
    """The polars type a column of ``col``'s type is typed as."""
    return {
        ColumnType.TEXT: pl.String(),
        ColumnType.DATE: pl.Date(),
        ColumnType.TIMESTAMP: pl.Datetime("us"),
        ColumnType.NUMBER: pl.Float64(),
    }[col.type]


def parse_timestamps(
    col: Column,
    source: pl.Series,
    rows: pl.Series,
    label: str,
    log: ProblemLog,
    zone: str | None,
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """ISO 8601 date-times, those with a UTC offset converted to ``zone``'s local time.

    Returns the parsed column, a mask of the values refused here (reported already): with an
    offset but no zone to convert to, or an offset beyond ±18:00, and the UTC instant of each
    value converted (null for the others): two local times in the hour repeated when clocks go
    back are ordered by their instants.
    """
    # A cheap look at the ends first: most exports carry no offset at all.
    if source.str.contains(_OFFSET_END).any():
        parts = source.str.extract_groups(_WITH_OFFSET)
        local = parts.struct.field("local")
        with_offset = local.is_not_null()
    else:
        with_offset = pl.repeat(False, len(source), eager=True)
    if not with_offset.any():
        parsed = parse_moments(col, source, label, log)
        _warn_daylight_saving_gaps(col, parsed, label, log, zone)
        return parsed, with_offset, _no_instants(len(source))
    sign = pl.when(pl.col("sign") == "-").then(-1).otherwise(1)
    minutes = (
        pl.DataFrame({"parts": parts})
        .unnest("parts")
        .select(
            sign
            * (
                pl.col("hours").cast(pl.Int64, strict=False).fill_null(0) * 60
                + pl.col("minutes").cast(pl.Int64, strict=False).fill_null(0)
            )
        )
        .to_series()
    )
    too_far = with_offset & (
        (minutes.abs() > _LARGEST_OFFSET_MINUTES)
        | (parts.struct.field("minutes").cast(pl.Int64, strict=False) > 59).fill_null(False)
    )
    if too_far.any():
        log.add_where(
            label,
            col.name,
            too_far,
            rows,
            "not a UTC offset: offsets run from -18:00 to +18:00",
            source,
        )
    if zone is None:
        refused = with_offset & ~too_far
        if refused.any():
            log.add_where(
                label,
                col.name,
                refused,
                rows,
                "a date-time with a UTC offset: the store keeps local times, so export them "
                f"with no offset, or convert them with {CONVERT_OPTION}",
                source,
            )
        parsed = parse_moments(col, source.set(with_offset, None), label, log)
        return parsed, with_offset, _no_instants(len(source))
    parsed = parse_moments(col, pl.select(pl.coalesce(local, source)).to_series(), label, log)
    offset = with_offset & ~too_far
    _warn_daylight_saving_gaps(col, parsed.set(with_offset, None), label, log, zone)
    instants = parsed - (minutes.fill_null(0) * 60_000_000).cast(pl.Duration("us"))
    in_zone = (
        instants.dt.replace_time_zone("UTC").dt.convert_time_zone(zone).dt.replace_time_zone(None)
    )
    converted = pl.select(
        pl.when(pl.lit(offset)).then(pl.lit(in_zone)).otherwise(pl.lit(parsed))
    ).to_series()
    converted = converted.set(too_far, None)
    count_conversions(col, rows.filter(offset & parsed.is_not_null()), label, log, zone)
    return converted.rename(col.name), too_far, instants.set(~offset, None).rename(col.name)


def _no_instants(length: int) -> pl.Series:
    return pl.repeat(None, length, dtype=pl.Datetime("us"), eager=True)


def count_conversions(col: Column, rows: pl.Series, label: str, log: ProblemLog, zone: str) -> None:
    """Record that ``rows`` of ``col`` were converted to ``zone`` local time (and warn)."""
    if rows.len():
        log.converted.append((label, rows))
        log.warn(
            f"{label}, column '{col.name}': {rows.len()} date-time(s) with a UTC offset "
            f"converted to {zone} local time"
        )


def _warn_daylight_saving_gaps(
    col: Column, local: pl.Series, label: str, log: ProblemLog, zone: str | None
) -> None:
    """Count local times that do not exist in ``zone`` (skipped when clocks go forward).

    They are kept as written: the store keeps wall-clock times, and which instant the writer
    meant (an hour earlier? later?) cannot be known.
    """
    if zone is None or not local.is_not_null().any():
        return
    placed = local.dt.replace_time_zone(zone, non_existent="null", ambiguous="earliest")
    gaps = (placed.is_null() & local.is_not_null()).sum()
    if gaps:
        log.warn(
            f"{label}, column '{col.name}': {gaps} local time(s) fall in a daylight-saving "
            f"gap of {zone} (a time its clocks skip); kept as written"
        )


def parse_moments(col: Column, source: pl.Series, label: str, log: ProblemLog) -> pl.Series:
    """ISO 8601 text as date-times (microseconds); null where the text is not ISO 8601."""
    iso = source.str.contains(_ISO_DATETIME).fill_null(False)
    leap = iso & source.str.contains(_LEAP_SECOND).fill_null(False)
    if leap.any():
        # Left to the parser, second 60 would roll over into the next minute (or year).
        source = source.set(leap, None).fill_null(
            source.str.replace(_LEAP_SECOND_FIELD, _LAST_MICROSECOND)
        )
        if col.type is ColumnType.TIMESTAMP:  # a DATE column refuses the time of day anyway
            log.warn(
                f"{label}, column '{col.name}': {leap.sum()} leap second(s) (second 60) "
                "stored as second 59.999999"
            )
    below = iso & source.str.contains(_BELOW_MICROSECOND).fill_null(False)
    if below.any() and col.type is ColumnType.TIMESTAMP:
        log.warn(
            f"{label}, column '{col.name}': {below.sum()} value(s) had digits below a "
            "microsecond; stored truncated to microseconds"
        )
    parsed = (
        pl.DataFrame({"v": source})
        .select(
            pl.coalesce(
                [
                    pl.col("v").str.strptime(pl.Datetime("us"), f, strict=False, exact=True)
                    for f in _DATETIME_FORMATS
                ]
            )
        )
        .to_series()
    )
    return parsed.set(~iso, None)


def checked_moments(
    col: Column,
    moments: pl.Series,
    rows: pl.Series,
    label: str,
    log: ProblemLog,
    shown: pl.Series | None,
) -> pl.Series:
    """Dates or date-times from any input, checked and in the column's store type.

    The one place every date passes, whatever the file format: years outside 0001-9999 are
    reported (and dropped) before any conversion can overflow, nanoseconds are truncated to
    microseconds (and counted), time zones dropped (after being reported by the caller), and a
    DATE column refuses a time of day.
    """
    moments = _within_calendar(col, moments, rows, label, log, shown)
    if isinstance(moments.dtype, pl.Datetime):
        if moments.dtype.time_unit == "ns":
            below = (moments.to_physical() % 1000 != 0).sum()
            if below and col.type is ColumnType.TIMESTAMP:
                log.warn(
                    f"{label}, column '{col.name}': {below} value(s) had digits below a "
                    "microsecond; stored truncated to microseconds"
                )
        # polars floors when it drops nanoseconds: 12:00:00.0000009 stays in 12:00:00.
        converted = moments.dt.replace_time_zone(None).cast(pl.Datetime("us"))
        if col.type is ColumnType.DATE:
            shown_values = shown if shown is not None else converted
            _refuse_times_of_day(col, converted, rows, label, log, shown_values)
            return converted.cast(pl.Date)
        return converted
    return moments.cast(polars_type(col))


def _refuse_times_of_day(
    col: Column,
    moments: pl.Series,
    rows: pl.Series,
    label: str,
    log: ProblemLog,
    shown: pl.Series,
) -> None:
    """A DATE column holds days; a time of day would be silently dropped, so it is an error."""
    with_time = (moments.dt.truncate("1d") != moments).fill_null(False)
    if with_time.any():
        log.add_where(
            label,
            col.name,
            with_time,
            rows,
            "expected a date without a time of day",
            shown,
        )


def _within_calendar(
    col: Column,
    moments: pl.Series,
    rows: pl.Series,
    label: str,
    log: ProblemLog,
    shown: pl.Series | None,
) -> pl.Series:
    """Dates outside years 0001-9999 reported (and dropped), compared in the input's own unit.

    Python's datetime cannot hold them (every read of such a row would fail), and converting
    them between units can overflow.
    """
    physical = moments.to_physical()
    first = (_FIRST_DAY - dt.date(1970, 1, 1)).days
    last = (_LAST_DAY - dt.date(1970, 1, 1)).days
    if isinstance(moments.dtype, pl.Datetime):
        per_day = _UNITS_PER_DAY[moments.dtype.time_unit or "us"]
        low, high = first * per_day, (last + 1) * per_day - 1
    else:
        low, high = first, last
    # Bounds beyond int64 cannot be compared with an int64 column (and hold every value).
    low, high = max(low, _INT64[0]), min(high, _INT64[1])
    outside = ((physical < low) | (physical > high)).fill_null(False)
    if not outside.any():
        return moments
    if shown is not None:
        values: list[object] = shown.filter(outside).to_list()
    else:
        years = moments.filter(outside).dt.year().to_list()
        values = [f"year {y}" if y is not None else "a year beyond ±262143" for y in years]
    log.add_rows(label, col.name, rows.filter(outside).to_list(), OUTSIDE_CALENDAR, values)
    return moments.set(outside, None)
