"""``label import``: filled sheets merged into a labels file, agreement, the adjudication sheet.

See :mod:`.labelling` for the workflow. Every sheet is checked before anything is written, and
each output file is written to a temporary name beside it and renamed when complete. No output
may be a file read: the labels file and the adjudication sheet written are checked against
every sheet given, the adjudication sheet read, and each other, before anything is written.

Annotators' comments are carried into the adjudication sheet (``<name>_comment``); the labels
file has no comment column (:class:`~recordagent.evaluation.labels.Label`, the evaluator's
format), so they are not written there.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from recordagent.errors import UserError
from recordagent.evaluation.audit import PatientRows
from recordagent.evaluation.labelling_agreement import AgreementRow, agreement_rows
from recordagent.evaluation.labelling_sheets import (
    ADJUDICATOR,
    Sheet,
    SheetProblems,
    SheetRow,
    adjudication_columns,
    item_cells,
    read_sheet,
    reserved_name,
    sheet_text,
)
from recordagent.evaluation.labelling_values import value_text
from recordagent.evaluation.labels import _SUFFIXES as _LABEL_SUFFIXES
from recordagent.evaluation.labels import Label, reference_labels, write_labels
from recordagent.paths import path_kind, replace_file, same_file, shown
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.ids import normalise_id

__all__ = ["AnnotatorCounts", "LabellingImport", "import_labelling"]


class AnnotatorCounts(BaseModel):
    """One annotator's sheet, counted."""

    annotator: str = Field(description="The annotator.")
    sheet: Path = Field(description="Their sheet.")
    labelled: int = Field(description="Items given a value or marked unanswerable.")
    unanswerable: int = Field(description="Of those, items marked unanswerable.")
    not_labelled: int = Field(description="Items of the study without a label in this sheet.")


class LabellingImport(BaseModel):
    """What :func:`import_labelling` read, measured and wrote."""

    labels_file: Path = Field(description="The merged labels file.")
    labels_written: int = Field(description="Rows written (item × annotator, adjudications).")
    adjudication_sheet: Path | None = Field(
        description="The adjudication sheet written; None when there was nothing to adjudicate "
        "or the path is the adjudication sheet read."
    )
    annotators: list[AnnotatorCounts] = Field(description="Per annotator, in sheet order.")
    items: int = Field(description="Items in the items file.")
    labelled_by_none: int = Field(description="Items no annotator labelled.")
    labelled_once: int = Field(description="Items exactly one annotator labelled.")
    labelled_by_several: int = Field(description="Items two or more annotators labelled.")
    agreement: list[AgreementRow] = Field(
        description="Overall, then per answer type and per template."
    )
    disagreements: list[str] = Field(
        description="Items on which some two annotators disagree: they need adjudication."
    )
    adjudicated: list[str] = Field(description="Items with an adjudicated label.")
    open_disagreements: list[str] = Field(
        default_factory=list, description="Disagreements without an adjudicated label."
    )
    stale_adjudication_sheet: Path | None = Field(
        default=None,
        description="No disagreement is left, but an adjudication sheet from an earlier import "
        "is at the default path: it is out of date (left as it is).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Rows read but not labelled although they hold evidence or a comment "
        "(file, row, line): nothing is lost from the sheets, but they are not labels.",
    )
    resolved: int = Field(description="Items with a reference label (the evaluator scores them).")
    unresolved: list[str] = Field(
        description="Labelled items still without a reference (disagreements not adjudicated)."
    )


def import_labelling(
    sheets: Sequence[Path],
    items: Sequence[EvalItem],
    out: Path,
    *,
    adjudication: Path | None = None,
    adjudication_out: Path | None = None,
    store: RecordStore | None = None,
) -> LabellingImport:
    """Merge filled labelling sheets into a labels file; agreement; the adjudication sheet.

    Args:
        sheets: The annotators' filled sheets (one per annotator).
        items: The items of the study (the items file the workbook was made from).
        out: The labels file to write (.csv, .jsonl or .parquet).
        adjudication: A filled adjudication sheet: its values become adjudicated labels.
        adjudication_out: Where to write the adjudication sheet of the disagreements
            (default: beside ``out``, ``<stem>.adjudication.csv``; when that default is the
            sheet read as ``adjudication``, it is not written over).
        store: The record store: each evidence id must name a row of its item's patient
            (documents, chunks, lab values, events). Without it, ids are not checked.

    Raises:
        UserError: Every problem of every sheet (file, row, column): unreadable sheets, unknown
            or repeated item ids, values that are not of the item's type, two sheets of one
            annotator, reserved annotator names, evidence ids not in the record; an output
            that is a file read (or both outputs one file); or an output that cannot be
            written. Nothing is written then.
    """
    if out.suffix.lower() not in _LABEL_SUFFIXES:
        raise UserError(f"--out {shown(out)}: a labels file ends in {', '.join(_LABEL_SUFFIXES)}")
    if not sheets:
        raise UserError("no sheets to import")
    target = adjudication_out or out.with_name(f"{out.stem}.adjudication.csv")
    _refuse_overwriting(sheets, adjudication, out, target, explicit=adjudication_out is not None)
    by_id = {item.id: item for item in items}
    problems = SheetProblems()
    read: list[Sheet] = []
    owners: dict[str, Path] = {}
    given: set[Path] = set()
    for path in sheets:
        if Path(path).absolute() in given:
            problems.add(Path(path), None, None, "the same sheet given twice")
            continue
        given.add(Path(path).absolute())
        sheet = read_sheet(Path(path), by_id, problems)
        if sheet is None:
            continue
        reserved = reserved_name(sheet.annotator)
        if sheet.annotator.casefold() == ADJUDICATOR:
            problems.add(
                sheet.path,
                None,
                "annotator",
                f"{ADJUDICATOR!r} is reserved: give the adjudication sheet as --adjudication",
            )
        elif reserved is not None:
            problems.add(sheet.path, None, "annotator", f"{reserved}; rename the annotator")
        elif sheet.annotator in owners:
            problems.add(
                sheet.path,
                None,
                "annotator",
                f"a second sheet of {sheet.annotator!r} (the first is {owners[sheet.annotator]})",
            )
        owners.setdefault(sheet.annotator, sheet.path)
        read.append(sheet)
    adjudicated_sheet = None
    if adjudication is not None:
        adjudicated_sheet = read_sheet(
            Path(adjudication), by_id, problems, value_column="adjudicated_value"
        )
    if store is not None:
        both = [*read, *([adjudicated_sheet] if adjudicated_sheet else [])]
        _check_evidence(both, by_id, store, problems)
    problems.raise_if_any()

    own = [
        Label(
            item_id=row.item_id, annotator=sheet.annotator, value=row.value, evidence=row.evidence
        )
        for sheet in read
        for row in sheet.rows
        if row.labelled
    ]
    settled = [
        Label(
            item_id=row.item_id,
            annotator=ADJUDICATOR,
            value=row.value,
            evidence=row.evidence,
            adjudicated=True,
        )
        for row in (adjudicated_sheet.rows if adjudicated_sheet else [])
        if row.labelled
    ]
    agreement, disagreeing = agreement_rows(own, by_id)
    references, unresolved = reference_labels([*own, *settled], by_id)
    same_as_input = adjudication is not None and same_file(target, Path(adjudication))
    written_sheet: Path | None = None
    stale: Path | None = None
    labels = [*own, *settled]
    _replace_with(out, lambda tmp: write_labels(labels, tmp))
    if disagreeing and not same_as_input:
        text = _adjudication_text(read, adjudicated_sheet, disagreeing, by_id, target)
        replace_file(target, text.encode("utf-8"), "adjudication sheet")
        written_sheet = target
    elif not disagreeing and target.is_file() and not same_as_input:
        # Someone may have written in it: it is reported, not removed.
        stale = target
    adjudicated_ids = {label.item_id for label in settled}
    labelled_by: dict[str, int] = defaultdict(int)
    for label in own:
        labelled_by[label.item_id] += 1
    return LabellingImport(
        labels_file=out,
        labels_written=len(labels),
        adjudication_sheet=written_sheet,
        annotators=[
            AnnotatorCounts(
                annotator=sheet.annotator,
                sheet=sheet.path,
                labelled=sum(1 for r in sheet.rows if r.labelled),
                unanswerable=sum(1 for r in sheet.rows if r.labelled and r.value is None),
                not_labelled=len(by_id) - sum(1 for r in sheet.rows if r.labelled),
            )
            for sheet in read
        ],
        items=len(by_id),
        labelled_by_none=sum(1 for i in by_id if labelled_by[i] == 0),
        labelled_once=sum(1 for i in by_id if labelled_by[i] == 1),
        labelled_by_several=sum(1 for i in by_id if labelled_by[i] >= 2),
        agreement=agreement,
        disagreements=disagreeing,
        adjudicated=sorted(adjudicated_ids),
        open_disagreements=[i for i in disagreeing if i not in adjudicated_ids],
        stale_adjudication_sheet=stale,
        warnings=_unlabelled_notes(read, adjudicated_sheet),
        resolved=len(references),
        unresolved=unresolved,
    )


def _adjudication_text(
    sheets: Sequence[Sheet],
    adjudicated: Sheet | None,
    disagreeing: Sequence[str],
    items: Mapping[str, EvalItem],
    target: Path,
) -> str:
    """The adjudication sheet: each disagreement with every annotator's label side by side."""
    rows_of: dict[str, dict[str, SheetRow]] = {
        sheet.annotator: {row.item_id: row for row in sheet.rows} for sheet in sheets
    }
    settled = {row.item_id: row for row in (adjudicated.rows if adjudicated else [])}
    annotators = [sheet.annotator for sheet in sheets]
    # The sheets' order (the workbook's), then any item the first sheet lacks.
    order = [r.item_id for s in sheets for r in s.rows]
    wanted = set(disagreeing)
    ordered = [i for i in dict.fromkeys(order) if i in wanted]
    rows = []
    for n, item_id in enumerate(ordered, start=1):
        item = items[item_id]
        theirs = [rows_of[a].get(item_id) for a in annotators]
        view = next(
            (
                _view_from(s.path, r.view, target)
                for s, r in zip(sheets, theirs, strict=True)
                if r is not None and r.view
            ),
            "",
        )
        cells = item_cells(n, item, ADJUDICATOR, view)
        said = []
        for annotator, row in zip(annotators, theirs, strict=True):
            labelled = row is not None and row.labelled
            value = value_text(row.value) if row is not None and labelled else ""
            cells[f"{annotator}_value"] = value
            cells[f"{annotator}_evidence"] = "; ".join(row.evidence) if row else ""
            cells[f"{annotator}_comment"] = row.comment if row else ""
            if labelled:
                said.append(f"{annotator}: {value}")
        done = settled.get(item_id)
        cells |= {
            "disagreement": " vs ".join(said),
            "adjudicated_value": value_text(done.value)
            if done and done.value is not None and done.labelled
            else "",
            "unanswerable": "yes" if done and done.labelled and done.value is None else "",
            "evidence": "; ".join(done.evidence) if done else "",
            "comment": done.comment if done else "",
        }
        rows.append(cells)
    return sheet_text(adjudication_columns(annotators), rows)


def _view_from(sheet: Path, view: str, target: Path) -> str:
    """A sheet's view path, relative to the folder of the sheet written at ``target``.

    Empty when the view is not where the sheet says (a sheet moved out of its workbook): a
    link that points nowhere is worse than none.
    """
    page = sheet.parent / view
    if not page.is_file():
        return ""
    try:
        return os.path.relpath(page, target.absolute().parent)
    except ValueError:  # another drive (Windows)
        return str(page.absolute())


def _refuse_overwriting(
    sheets: Sequence[Path], adjudication: Path | None, out: Path, target: Path, *, explicit: bool
) -> None:
    """Refuse outputs that are files read, or one file twice (before anything is read).

    The default adjudication sheet path may be the adjudication sheet read: it is then not
    written (the import that reads it writes the labels only), so that case is not refused.
    """
    inputs = [(Path(p), "a sheet read") for p in sheets]
    read_adjudication = [] if adjudication is None else [Path(adjudication)]
    outputs = [
        ("--out", out, [*inputs, *((p, "the adjudication sheet read") for p in read_adjudication)]),
        (
            "--adjudication-out" if explicit else "the adjudication sheet",
            target,
            [*inputs, *((p, "the adjudication sheet read") for p in read_adjudication if explicit)],
        ),
    ]
    problems = [
        f"{flag} {shown(output)} is {what}: it would be written over"
        for flag, output, against in outputs
        for path, what in against
        if same_file(output, path)
    ]
    if same_file(out, target):
        problems.append(f"--out and the adjudication sheet are the same file {shown(out)}")
    if problems:
        raise UserError(
            "nothing was written: " + "; ".join(dict.fromkeys(problems)) + ". Give another path."
        )


def _check_evidence(
    sheets: Sequence[Sheet],
    items: Mapping[str, EvalItem],
    store: RecordStore,
    problems: SheetProblems,
) -> None:
    """Note every evidence id of a label that names nothing in its patient's record."""
    known: dict[str, PatientRows | None] = {}
    for sheet in sheets:
        for row in sheet.rows:
            if not (row.labelled and row.evidence):
                continue  # a row that is not a label is reported as a warning instead
            patient = items[row.item_id].patient_id
            if patient not in known:
                known[patient] = (
                    PatientRows(store.scope(patient)) if store.has_patient(patient) else None
                )
            rows = known[patient]
            if rows is None:
                problems.add(
                    sheet.path,
                    row.row,
                    "evidence",
                    f"patient {patient!r} of item {row.item_id!r} is not in the store "
                    f"{store.location}",
                    row.line,
                )
                continue
            missing = [i for i in row.evidence if not rows.knows(normalise_id(i))]
            if missing:
                listed = ", ".join(repr(i) for i in missing)
                problems.add(
                    sheet.path,
                    row.row,
                    "evidence",
                    f"{listed} name(s) nothing in the record of patient {patient!r} (cite the "
                    "ids shown in the item's view)",
                    row.line,
                )


def _unlabelled_notes(sheets: Sequence[Sheet], adjudicated: Sheet | None) -> list[str]:
    """Rows with evidence or a comment but no value and no tick: read as not labelled."""
    notes = []
    column = {id(adjudicated): "adjudicated_value"}
    for sheet in [*sheets, *([adjudicated] if adjudicated else [])]:
        for row in sheet.rows:
            if row.labelled or not (row.evidence or row.comment):
                continue
            held = " and ".join(
                part
                for part, kept in (("evidence", row.evidence), ("a comment", row.comment))
                if kept
            )
            notes.append(
                f"{sheet.path}, row {row.row} (line {row.line}): item {row.item_id!r} has "
                f"{held} but no {column.get(id(sheet), 'value')}: not labelled (write a value, "
                "or unanswerable)"
            )
    return notes


def _replace_with(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary file beside it, renamed into place when complete."""
    if path_kind(path, "output file") == "folder":
        raise UserError(f"{shown(path)} is a folder; give a file name")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UserError(f"cannot write {shown(path)}: {exc.strerror or exc}") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
