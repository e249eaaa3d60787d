"""Validation of bundle tables: types, required values, vocabularies, ranges and duplicates.

Every check is vectorised over the whole column; each failing row becomes a
:class:`~recordagent.errors.LoadProblem` naming file, row and column. Checks that need the store
(references to known patients, ids already loaded) live in :mod:`recordagent.records.load`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from recordagent.errors import LoadProblem
from recordagent.records.bundle import ROW_COLUMN
from recordagent.records.schema import SIGNED_ANALYTE_WORDS, Column, ColumnType, TableSpec

__all__ = ["ProblemLog", "validate_table"]

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
# The range every store type holds: ISO 8601 years 0001-9999.
_FIRST_DAY, _LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)
_MICROSECONDS_PER_DAY = 86_400_000_000
_TEXT_INPUT_TYPES = (pl.String, pl.Categorical, pl.Enum)
ROWS_SHOWN_PER_CHECK = 3


@dataclass
class ProblemLog:
    """Collects problems; counts all of them but keeps only a few rows per check."""

    problems: list[LoadProblem] = field(default_factory=list)
    total: int = 0

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
            return raw.cast(pl.String).rename(col.name)  # already trimmed by _trim_text
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
            frame = pl.DataFrame({"v": source})
            parsed = frame.select(
                pl.coalesce(
                    [
                        pl.col("v").str.strptime(pl.Datetime("us"), f, strict=False, exact=True)
                        for f in _DATETIME_FORMATS
                    ]
                )
            ).to_series()
            parsed = parsed.set(~source.str.contains(_ISO_DATETIME).fill_null(False), None)
            if col.type is ColumnType.DATE:
                _refuse_times_of_day(col, parsed, rows, label, log, source)
            converted = parsed.cast(target) if col.type is ColumnType.DATE else parsed
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
        return converted.rename(col.name)

    allowed_numeric = dtype.is_numeric() and not dtype == pl.Boolean
    if col.type is ColumnType.NUMBER and allowed_numeric:
        return raw.cast(pl.Float64).rename(col.name)
    if col.type in (ColumnType.DATE, ColumnType.TIMESTAMP) and isinstance(
        dtype, (pl.Date, pl.Datetime)
    ):
        raw = _within_calendar(col, raw, rows, label, log)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            log.add(
                LoadProblem(
                    label,
                    f"time zone '{dtype.time_zone}' not supported: store local "
                    "times without a zone",
                    column=col.name,
                )
            )
        converted = (
            raw.dt.replace_time_zone(None).cast(pl.Datetime("us"))
            if isinstance(dtype, pl.Datetime)
            else raw.cast(pl.Datetime("us"))
        )
        if col.type is ColumnType.DATE and isinstance(dtype, pl.Datetime):
            _refuse_times_of_day(col, converted, rows, label, log, converted)
        return converted.cast(target).rename(col.name)
    log.add(LoadProblem(label, f"expected {col.type.value} values, found {dtype}", column=col.name))
    return pl.repeat(None, len(raw), dtype=target, eager=True).rename(col.name)


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
    col: Column, raw: pl.Series, rows: pl.Series, label: str, log: ProblemLog
) -> pl.Series:
    """Dates outside years 0001-9999 reported (and dropped) before any conversion overflows."""
    physical = raw.to_physical()
    if isinstance(raw.dtype, pl.Date):
        low, high = (_FIRST_DAY - dt.date(1970, 1, 1)).days, (_LAST_DAY - dt.date(1970, 1, 1)).days
    else:
        assert isinstance(raw.dtype, pl.Datetime)
        per_us = {"ns": 1000, "us": 1, "ms": 0.001}[raw.dtype.time_unit or "us"]
        low_days = (_FIRST_DAY - dt.date(1970, 1, 1)).days
        high_days = (_LAST_DAY - dt.date(1970, 1, 1)).days + 1
        low = int(low_days * _MICROSECONDS_PER_DAY * per_us)
        high = int(high_days * _MICROSECONDS_PER_DAY * per_us) - 1
    outside = ((physical < low) | (physical > high)).fill_null(False)
    if not outside.any():
        return raw
    log.add_rows(
        label,
        col.name,
        rows.filter(outside).to_list(),
        "date outside the years 0001-9999",
        physical.filter(outside).to_list(),
    )
    return raw.set(outside, None)


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
            checks.append(
                _Check(col.name, "value must be a finite number", ~value.is_finite(), True)
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
