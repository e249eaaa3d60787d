"""Validation of bundle tables: types, required values, vocabularies, ranges and duplicates.

Every check is vectorised over the whole column; each failing row becomes a
:class:`~recordagent.errors.LoadProblem` naming file, row and column. Checks that need the store
(references to known patients, ids already loaded) live in :mod:`recordagent.records.load`.

The value rules every loader shares (:mod:`recordagent.records.value_rules`: dates within the
years 0001-9999, finite numbers no larger than 1e15) are applied here while each table is typed,
whatever its file format; ids are put in NFC and refused with invisible characters
(:mod:`recordagent.records.ids`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from recordagent.errors import LoadProblem
from recordagent.records.bundle import ROW_COLUMN
from recordagent.records.ids import INVISIBLE_ID_PATTERN
from recordagent.records.schema import SIGNED_ANALYTE_WORDS, Column, ColumnType, TableSpec
from recordagent.records.value_rules import (
    MAX_MAGNITUDE,
    NOT_FINITE,
    OUTSIDE_CALENDAR,
    ROWS_SHOWN_PER_CHECK,
    TOO_LARGE,
)

__all__ = ["ROWS_SHOWN_PER_CHECK", "ProblemLog", "validate_table"]

_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_SEX_ALIASES = {"f": "female", "m": "male", "o": "other", "u": "unknown", "w": "female"}
# Columns whose text is kept exactly as given (everything else is trimmed).
_VERBATIM = frozenset({"text", "detail", "title"})
# Strict ISO 8601 shapes (polars' parser alone also takes '2021-3-4').
_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
# Second 60 (a leap second, which ISO 8601 and FHIR allow): kept as the minute's last
# microsecond, so the value keeps its day and its order. Python's datetime has no second 60.
_LEAP_SECOND = r"[T ]\d{2}:\d{2}:60(\.\d+)?$"
_LEAP_SECOND_FIELD = r":60(\.\d+)?$"
_LAST_MICROSECOND = ":59.999999"
_BELOW_MICROSECOND = r"\.\d{6}\d*[1-9]"  # a fraction with non-zero digits past the sixth
# The range every store type holds: ISO 8601 years 0001-9999.
_FIRST_DAY, _LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)
_UNITS_PER_DAY = {"ns": 86_400 * 10**9, "us": 86_400 * 10**6, "ms": 86_400 * 10**3}
_INT64 = (-(2**63), 2**63 - 1)
_TEXT_INPUT_TYPES = (pl.String, pl.Categorical, pl.Enum)


@dataclass
class ProblemLog:
    """Collects problems; counts all of them but keeps only a few rows per check."""

    problems: list[LoadProblem] = field(default_factory=list)
    total: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Record a change made to the data while loading it (the load goes on)."""
        self.warnings.append(message)

    def add(self, problem: LoadProblem) -> None:
        """Record one problem."""
        self.total += 1
        self.problems.append(problem)

    def add_rows(
        self,
        file: str,
        column: str | None,
        rows: Sequence[int],
        message: str,
        values: Sequence[object] | None = None,
    ) -> None:
        """Record the same problem on many rows, keeping the first few."""
        self.total += len(rows)
        for k, row in enumerate(rows[:ROWS_SHOWN_PER_CHECK]):
            text = message if values is None else f"{message} (got {_show(values[k])})"
            self.problems.append(LoadProblem(file, text, row, column))

    def extend(self, other: ProblemLog) -> None:
        """Take over every problem of ``other``."""
        self.total += other.total
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)

    def __bool__(self) -> bool:
        return self.total > 0


def validate_table(
    spec: TableSpec, frame: pl.DataFrame, label: str, log: ProblemLog
) -> pl.DataFrame:
    """Type and check one table; returns it with the spec's columns (and the row column).

    Problems go to ``log``; the returned frame is meaningful only when none were added.
    """
    problems_before = log.total
    present = [c for c in frame.columns if c != ROW_COLUMN]
    unknown = [c for c in present if c not in spec.column_names]
    for name in unknown:
        hint = _closest(name, spec.column_names)
        log.add(
            LoadProblem(
                label,
                "unknown column"
                + (
                    f"; did you mean '{hint}'?"
                    if hint
                    else f"; expected columns: {', '.join(spec.column_names)}"
                ),
                column=name,
            )
        )
    for col in spec.columns:
        if col.required and col.name not in present:
            log.add(LoadProblem(label, "required column is missing", column=col.name))
    if log.total > problems_before:  # without the right columns nothing else can be checked
        return frame

    frame = _trim_text(spec, frame)
    typed: dict[str, pl.Series] = {ROW_COLUMN: frame[ROW_COLUMN]}
    unparsed: dict[str, pl.Series] = {}
    rows = frame[ROW_COLUMN]
    none = pl.repeat(False, frame.height, eager=True)
    for col in spec.columns:
        if col.name not in frame.columns:
            typed[col.name] = pl.repeat(
                None, frame.height, dtype=_polars_type(col), eager=True
            ).rename(col.name)
            unparsed[col.name] = none
            continue
        typed[col.name], unparsed[col.name] = _typed_column(col, frame[col.name], rows, label, log)
    given = pl.DataFrame(typed)
    out = normalised(spec, given)
    _check_values(spec, out, unparsed, label, log, shown=given)
    return out


def _trim_text(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Trim text columns (but verbatim ones) and make blank values missing, in one pass."""
    trimmed = []
    for col in spec.columns:
        if col.type is not ColumnType.TEXT or col.name not in frame.columns:
            continue
        dtype = frame.schema[col.name]
        if dtype in (pl.Categorical,) or isinstance(dtype, pl.Enum):
            frame = frame.with_columns(pl.col(col.name).cast(pl.String))
        elif dtype != pl.String:
            continue
        if col.name in _VERBATIM:
            continue
        value = pl.col(col.name).str.strip_chars()
        trimmed.append(pl.when(value.str.len_bytes() > 0).then(value).alias(col.name))
    return frame.lazy().with_columns(trimmed).collect() if trimmed else frame


def _polars_type(col: Column) -> pl.DataType:
    return {
        ColumnType.TEXT: pl.String(),
        ColumnType.DATE: pl.Date(),
        ColumnType.TIMESTAMP: pl.Datetime("us"),
        ColumnType.NUMBER: pl.Float64(),
    }[col.type]


def _typed_column(
    col: Column, raw: pl.Series, rows: pl.Series, label: str, log: ProblemLog
) -> tuple[pl.Series, pl.Series]:
    """The column in its logical type, and a mask of the values that failed to convert."""
    converted = _convert(col, raw, rows, label, log)
    if col.type is ColumnType.TEXT:
        return converted, pl.repeat(False, len(raw), eager=True)
    given = raw.is_not_null()
    if raw.dtype == pl.String:
        given = given & (raw.str.strip_chars().str.len_chars() > 0)
    return converted, given & converted.is_null()


def _convert(
    col: Column, raw: pl.Series, rows: pl.Series, label: str, log: ProblemLog
) -> pl.Series:
    dtype = raw.dtype
    target = _polars_type(col)
    if isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Binary, pl.Object)):
        log.add(
            LoadProblem(label, f"expected {col.type.value} values, found {dtype}", column=col.name)
        )
        return pl.repeat(None, len(raw), dtype=target, eager=True).rename(col.name)
    if dtype == pl.Null:
        return pl.repeat(None, len(raw), dtype=target, eager=True).rename(col.name)

    if col.type is ColumnType.TEXT:
        if dtype == pl.String or dtype.is_integer():  # integer ids are common and exact
            text = raw.cast(pl.String)  # already trimmed by _trim_text
            if col.name.endswith("_id") and dtype == pl.String:
                text = _nfc(text)
            return text.rename(col.name)
        log.add(
            LoadProblem(
                label,
                f"expected text values, found {dtype}"
                + ("; ids must be text or integers" if col.name.endswith("_id") else ""),
                column=col.name,
            )
        )
        return pl.repeat(None, len(raw), dtype=target, eager=True).rename(col.name)

    if dtype == pl.String:
        source = raw.str.strip_chars()
        if col.type is ColumnType.NUMBER:
            converted = source.cast(pl.Float64, strict=False)
        else:
            converted = _parse_moments(col, source, label, log)
        failed = source.is_not_null() & (source.str.len_chars() > 0) & converted.is_null()
        if failed.any():
            expected = {
                ColumnType.NUMBER: "a number",
                ColumnType.DATE: "an ISO date such as 2021-03-04",
                ColumnType.TIMESTAMP: "an ISO date or date-time such as 2021-03-04 or "
                "2021-03-04 13:45 (local time, no offset)",
            }[col.type]
            log.add_rows(
                label,
                col.name,
                rows.filter(failed).to_list(),
                f"expected {expected}",
                source.filter(failed).to_list(),
            )
        if col.type is not ColumnType.NUMBER:
            converted = _checked_moments(col, converted, rows, label, log, shown=source)
        return converted.rename(col.name)

    allowed_numeric = dtype.is_numeric() and not dtype == pl.Boolean
    if col.type is ColumnType.NUMBER and allowed_numeric:
        return raw.cast(pl.Float64).rename(col.name)
    if col.type in (ColumnType.DATE, ColumnType.TIMESTAMP) and isinstance(
        dtype, (pl.Date, pl.Datetime)
    ):
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            log.add(
                LoadProblem(
                    label,
                    f"time zone '{dtype.time_zone}' not supported: store local "
                    "times without a zone",
                    column=col.name,
                )
            )
        return _checked_moments(col, raw, rows, label, log, shown=None).rename(col.name)
    log.add(LoadProblem(label, f"expected {col.type.value} values, found {dtype}", column=col.name))
    return pl.repeat(None, len(raw), dtype=target, eager=True).rename(col.name)


def _nfc(ids: pl.Series) -> pl.Series:
    """Ids in Unicode NFC (see :mod:`recordagent.records.ids`); ASCII ids are left as they are."""
    if not ids.str.contains(r"[^\x00-\x7F]").any():
        return ids
    return ids.str.normalize("NFC")


def _parse_moments(col: Column, source: pl.Series, label: str, log: ProblemLog) -> pl.Series:
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


def _checked_moments(
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
    return moments.cast(_polars_type(col))


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
        log.add_rows(
            label,
            col.name,
            rows.filter(with_time).to_list(),
            "expected a date without a time of day",
            shown.filter(with_time).to_list(),
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


@dataclass(frozen=True)
class _Check:
    """A rule over a table: rows where ``failed`` is true break it."""

    column: str
    message: str
    failed: pl.Expr
    show_value: bool = False


def _check_values(
    spec: TableSpec,
    frame: pl.DataFrame,
    unparsed: dict[str, pl.Series],
    label: str,
    log: ProblemLog,
    shown: pl.DataFrame,
) -> None:
    """Value rules; cells that already failed to convert are not reported again.

    ``shown`` is the table before vocabulary normalisation: problems quote what the file says.

    All rules are evaluated in one parallel pass; rows are collected only for rules that fail.
    """
    checks: list[_Check] = []
    for col in spec.columns:
        value = pl.col(col.name)
        if col.required:
            missing = value.is_null() & ~pl.lit(unparsed[col.name])
            if col.nonblank and frame.schema[col.name] == pl.String:
                missing = missing | value.str.contains(r"^\s*$")
            what = "empty text" if col.name == "text" else "value is required"
            checks.append(_Check(col.name, what, missing))
        if col.finite:
            checks.append(_Check(col.name, NOT_FINITE, ~value.is_finite(), True))
            checks.append(
                _Check(col.name, TOO_LARGE, value.is_finite() & (value.abs() > MAX_MAGNITUDE), True)
            )
        if col.type is ColumnType.TEXT and frame.schema[col.name] == pl.String:
            if col.name.endswith("_id"):
                checks.append(
                    _Check(
                        col.name,
                        "id contains an invisible or control character; ids must be visible text",
                        value.str.contains(INVISIBLE_ID_PATTERN),
                        True,
                    )
                )
            else:
                # NUL is no character of any text: the file is binary, or UTF-16 read as UTF-8.
                checks.append(
                    _Check(
                        col.name,
                        "text contains a NUL byte (\\x00)",
                        value.str.contains("\x00", literal=True),
                    )
                )
        if col.allowed is not None:
            message = f"must be one of: {', '.join(col.allowed)}"
            checks.append(
                _Check(
                    col.name, message, value.is_not_null() & ~value.is_in(list(col.allowed)), True
                )
            )
    if spec.name == "labs":
        checks += _lab_checks(frame, unparsed["value_num"] | unparsed["value_text"])
    elif spec.name == "events":
        checks.append(_order_check("start_time", "end_time"))
    elif spec.name == "patients":
        checks.append(_order_check("birth_date", "death_date"))

    flags = (
        frame.lazy()
        .select([c.failed.fill_null(False).any().alias(str(i)) for i, c in enumerate(checks)])
        .collect()
    )
    rows = frame[ROW_COLUMN]
    for i, check in enumerate(checks):
        if not flags[str(i)][0]:
            continue
        failed = frame.select(check.failed.fill_null(False)).to_series()
        values = shown[check.column].filter(failed).to_list() if check.show_value else None
        log.add_rows(label, check.column, rows.filter(failed).to_list(), check.message, values)
    _check_duplicates(spec, frame, label, log)


def _normalise_vocabulary(col: Column) -> pl.Expr:
    lowered = pl.col(col.name).str.to_lowercase()
    if col.name == "sex":
        return lowered.replace(_SEX_ALIASES)
    return lowered


def normalised(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Controlled-vocabulary columns in canonical (lower-case) form."""
    exprs = [_normalise_vocabulary(c) for c in spec.columns if c.allowed is not None]
    return frame.with_columns(exprs) if exprs else frame


def _check_duplicates(spec: TableSpec, frame: pl.DataFrame, label: str, log: ProblemLog) -> None:
    ids = frame[spec.id_column]
    if ids.hash().n_unique() == ids.len():  # distinct hashes: distinct ids (the usual case)
        return
    dup = ids.is_not_null() & ids.is_duplicated()
    if not dup.any():
        return
    first_row = (
        frame.filter(dup).group_by(spec.id_column).agg(pl.col(ROW_COLUMN).min().alias("first"))
    )
    repeats = (
        frame.filter(dup)
        .join(first_row, on=spec.id_column)
        .filter(pl.col(ROW_COLUMN) != pl.col("first"))
        .sort(ROW_COLUMN)
    )
    log.total += repeats.height
    for rec in repeats.head(ROWS_SHOWN_PER_CHECK).iter_rows(named=True):
        log.problems.append(
            LoadProblem(
                label,
                f"duplicate id '{rec[spec.id_column]}' (first seen in row {rec['first']})",
                rec[ROW_COLUMN],
                spec.id_column,
            )
        )


def _lab_checks(frame: pl.DataFrame, unparsed: pl.Series) -> list[_Check]:
    value = pl.col("value_num")
    # Only the (few) analytes with negative values need their names looked at.
    negative_names = frame.filter(value < 0)["analyte_name"].unique().to_list()
    signed = [
        name
        for name in negative_names
        if name and any(word in name.lower() for word in SIGNED_ANALYTE_WORDS)
    ]
    return [
        _Check(
            "value_num",
            "a lab row needs value_num or value_text",
            value.is_null() & pl.col("value_text").is_null() & ~pl.lit(unparsed),
        ),
        _Check(
            "value_num",
            "negative value for an analyte that cannot be negative",
            (value < 0) & value.is_finite() & ~pl.col("analyte_name").is_in(signed),
            True,
        ),
        _Check(
            "ref_low",
            "reference range lower limit exceeds upper limit",
            pl.col("ref_low") > pl.col("ref_high"),
        ),
    ]


def _order_check(first: str, last: str) -> _Check:
    return _Check(last, f"{last} is before {first}", pl.col(last) < pl.col(first))


def _closest(name: str, options: Sequence[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name.lower(), options, n=1, cutoff=0.6)
    return match[0] if match else None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
