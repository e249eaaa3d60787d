"""Validation of bundle tables: types, required values, vocabularies, ranges and duplicates.

Every check is vectorised over the whole column; each failing row becomes a
:class:`~recordagent.errors.LoadProblem` naming file, row and column. Checks that need the store
(references to known patients, ids already loaded) live in
:mod:`recordagent.records.store_checks`.

The value rules every loader shares (:mod:`recordagent.records.value_rules`: dates within the
years 0001-9999, finite numbers no larger than 1e15) are applied here while each table is typed,
whatever its file format; ids are put in NFC and refused with invisible characters
(:mod:`recordagent.records.ids`).

Dates and date-times are parsed and checked in :mod:`recordagent.records.moments`: timestamps
carrying a UTC offset (``Z``, ``+01:00``, or a zone-aware Parquet column) are refused unless a
zone is given (``zone``, from ``LoadSettings.convert_timezone``), which converts them to that
zone's local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from recordagent.errors import LoadProblem
from recordagent.records.bundle import ROW_COLUMN
from recordagent.records.ids import INVISIBLE_ID_PATTERN
from recordagent.records.moments import (
    CONVERT_OPTION,
    checked_moments,
    count_conversions,
    parse_moments,
    parse_timestamps,
    polars_type,
)
from recordagent.records.problem_log import ProblemLog
from recordagent.records.schema import SIGNED_ANALYTE_WORDS, Column, ColumnType, TableSpec
from recordagent.records.value_rules import (
    MAX_MAGNITUDE,
    NOT_FINITE,
    ROWS_SHOWN_PER_CHECK,
    TOO_LARGE,
)

__all__ = ["CONVERT_OPTION", "ROWS_SHOWN_PER_CHECK", "ProblemLog", "validate_table"]

_SEX_ALIASES = {"f": "female", "m": "male", "o": "other", "u": "unknown", "w": "female"}
# Columns whose text is kept exactly as given (everything else is trimmed).
_VERBATIM = frozenset({"text", "detail", "title"})
_TEXT_INPUT_TYPES = (pl.String, pl.Categorical, pl.Enum)


def validate_table(
    spec: TableSpec,
    frame: pl.DataFrame,
    label: str,
    log: ProblemLog,
    *,
    zone: str | None = None,
) -> pl.DataFrame:
    """Type and check one table; returns it with the spec's columns (and the row column).

    Problems go to ``log``; the returned frame is meaningful only when none were added, or,
    for the rows no problem names, when every problem names a row.

    Args:
        spec: The table's columns and rules.
        frame: The table as read, with its row column.
        label: The file, as problems name it.
        log: Where problems, warnings and conversions are recorded.
        zone: IANA zone to convert timestamps with a UTC offset to (local time); None refuses
            them.
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
    instants: dict[str, pl.Series] = {}  # UTC instants of the timestamps converted, by column
    rows = frame[ROW_COLUMN]
    none = pl.repeat(False, frame.height, eager=True)
    for col in spec.columns:
        if col.name not in frame.columns:
            typed[col.name] = pl.repeat(
                None, frame.height, dtype=polars_type(col), eager=True
            ).rename(col.name)
            unparsed[col.name] = none
            continue
        typed[col.name], unparsed[col.name] = _typed_column(
            col, frame[col.name], rows, label, log, zone, instants
        )
    given = pl.DataFrame(typed)
    out = normalised(spec, given)
    _check_values(spec, out, unparsed, label, log, shown=given, instants=instants)
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


def _typed_column(
    col: Column,
    raw: pl.Series,
    rows: pl.Series,
    label: str,
    log: ProblemLog,
    zone: str | None,
    instants: dict[str, pl.Series],
) -> tuple[pl.Series, pl.Series]:
    """The column in its logical type, and a mask of the values that failed to convert.

    The UTC instants of timestamps converted from an offset go to ``instants``.
    """
    converted = _convert(col, raw, rows, label, log, zone, instants)
    if col.type is ColumnType.TEXT:
        return converted, pl.repeat(False, len(raw), eager=True)
    given = raw.is_not_null()
    if raw.dtype == pl.String:
        given = given & (raw.str.strip_chars().str.len_chars() > 0)
    return converted, given & converted.is_null()


def _convert(
    col: Column,
    raw: pl.Series,
    rows: pl.Series,
    label: str,
    log: ProblemLog,
    zone: str | None,
    instants: dict[str, pl.Series],
) -> pl.Series:
    dtype = raw.dtype
    target = polars_type(col)
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
        refused = pl.repeat(False, len(source), eager=True)
        if col.type is ColumnType.NUMBER:
            converted = source.cast(pl.Float64, strict=False)
        elif col.type is ColumnType.TIMESTAMP:
            converted, refused, instants[col.name] = parse_timestamps(
                col, source, rows, label, log, zone
            )
        else:
            converted = parse_moments(col, source, label, log)
        failed = (
            source.is_not_null() & (source.str.len_chars() > 0) & converted.is_null() & ~refused
        )
        if failed.any():
            expected = {
                ColumnType.NUMBER: "a number",
                ColumnType.DATE: "an ISO date such as 2021-03-04",
                ColumnType.TIMESTAMP: "an ISO date or date-time such as 2021-03-04 or "
                + (
                    "2021-03-04 13:45 (local time, no offset)"
                    if zone is None
                    else "2021-03-04 13:45 (local time), or 2021-03-04T13:45+01:00"
                ),
            }[col.type]
            log.add_where(
                label,
                col.name,
                failed,
                rows,
                f"expected {expected}",
                source,
            )
        if col.type is not ColumnType.NUMBER:
            converted = checked_moments(col, converted, rows, label, log, shown=source)
        return converted.rename(col.name)

    allowed_numeric = dtype.is_numeric() and not dtype == pl.Boolean
    if col.type is ColumnType.NUMBER and allowed_numeric:
        return raw.cast(pl.Float64).rename(col.name)
    if col.type in (ColumnType.DATE, ColumnType.TIMESTAMP) and isinstance(
        dtype, (pl.Date, pl.Datetime)
    ):
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            if zone is not None and col.type is ColumnType.TIMESTAMP:
                instants[col.name] = (
                    raw.dt.convert_time_zone("UTC")
                    .dt.replace_time_zone(None)
                    .cast(pl.Datetime("us"))
                )
                raw = raw.dt.convert_time_zone(zone)
                count_conversions(col, rows.filter(raw.is_not_null()), label, log, zone)
            else:
                log.add(
                    LoadProblem(
                        label,
                        f"time zone '{dtype.time_zone}' not supported: store local "
                        "times without a zone"
                        + (
                            f", or convert them with {CONVERT_OPTION}"
                            if col.type is ColumnType.TIMESTAMP
                            else ""
                        ),
                        column=col.name,
                    )
                )
        return checked_moments(col, raw, rows, label, log, shown=None).rename(col.name)
    log.add(LoadProblem(label, f"expected {col.type.value} values, found {dtype}", column=col.name))
    return pl.repeat(None, len(raw), dtype=target, eager=True).rename(col.name)


def _nfc(ids: pl.Series) -> pl.Series:
    """Ids in Unicode NFC (see :mod:`recordagent.records.ids`); ASCII ids are left as they are."""
    if not ids.str.contains(r"[^\x00-\x7F]").any():
        return ids
    return ids.str.normalize("NFC")


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
    instants: dict[str, pl.Series],
) -> None:
    """Value rules; cells that already failed to convert are not reported again.

    ``shown`` is the table before vocabulary normalisation: problems quote what the file says.
    ``instants`` are the UTC instants of timestamps converted from an offset, by column.

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
        checks.append(_order_check("start_time", "end_time", instants))
    elif spec.name == "patients":
        checks.append(_order_check("birth_date", "death_date", instants))

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
        values = shown[check.column] if check.show_value else None
        log.add_where(label, check.column, failed, rows, check.message, values)
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
    if log.keep_all:
        # Quarantining, every copy goes: which of them is the right row is not for the
        # loader to guess.
        copies = (
            frame.filter(dup)
            .group_by(spec.id_column)
            .agg(pl.col(ROW_COLUMN).sort().alias("rows"))
            .explode("rows", keep_nulls=False)
            .join(
                frame.filter(dup)
                .group_by(spec.id_column)
                .agg(pl.col(ROW_COLUMN).sort().alias("all")),
                on=spec.id_column,
            )
            .sort("rows")
        )
        log.add_each(
            [
                LoadProblem(
                    label,
                    f"duplicate id '{ident}' (rows {_row_list(every)}); every copy is rejected",
                    row,
                    spec.id_column,
                )
                for ident, row, every in copies.select(spec.id_column, "rows", "all").rows()
            ]
        )
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
    log.add_each(
        [
            LoadProblem(
                label,
                f"duplicate id '{rec[spec.id_column]}' (first seen in row {rec['first']})",
                rec[ROW_COLUMN],
                spec.id_column,
            )
            for rec in repeats.head(ROWS_SHOWN_PER_CHECK).iter_rows(named=True)
        ]
    )
    log.total += repeats.height - min(repeats.height, ROWS_SHOWN_PER_CHECK)


def _row_list(rows: Sequence[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


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


def _order_check(first: str, last: str, instants: dict[str, pl.Series]) -> _Check:
    """``last`` must not be before ``first``.

    Where both carried a UTC offset, their instants are compared, not their local times: in the
    hour repeated when clocks go back, 02:30+02:00 comes before 02:10+01:00.
    """
    before = pl.col(last) < pl.col(first)
    if first in instants and last in instants:
        start, end = pl.lit(instants[first]), pl.lit(instants[last])
        both = start.is_not_null() & end.is_not_null()
        before = pl.when(both).then(end < start).otherwise(before)
    return _Check(last, f"{last} is before {first}", before)


def _closest(name: str, options: Sequence[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name.lower(), options, n=1, cutoff=0.6)
    return match[0] if match else None
