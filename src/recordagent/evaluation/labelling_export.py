"""``label export``: the labelling workbook — a sheet per annotator, a view per item, an index.

See :mod:`.labelling` for the workflow. The workbook is built in a temporary folder beside
``out`` and moved into place only when complete, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from recordagent.errors import UserError
from recordagent.evaluation.audit import PatientRows, evidence_from_labels
from recordagent.evaluation.labelling_excerpts import ItemExcerpts, item_excerpts
from recordagent.evaluation.labelling_html import (
    BLIND_NOTE,
    render_index,
    render_item_view,
    view_name,
)
from recordagent.evaluation.labelling_sheets import (
    SHEET_COLUMNS,
    item_cells,
    reserved_name,
    sheet_text,
)
from recordagent.evaluation.labels import Label
from recordagent.paths import path_kind, shown
from recordagent.questions.items import EvalItem
from recordagent.records.db import RecordStore
from recordagent.records.tokens import Tokenizer
from recordagent.runners.retrieval import PatientRetriever, StructuredIndex
from recordagent.settings import Settings
from recordagent.tools.catalogue import lab_catalogue

__all__ = ["LabellingExport", "export_labelling"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LabellingExport(BaseModel):
    """What :func:`export_labelling` wrote."""

    folder: Path = Field(description="The workbook folder.")
    index: Path = Field(description="index.html: instructions and every item with its view.")
    sheets: dict[str, Path] = Field(description="Annotator → their CSV sheet.")
    items: int = Field(description="Items (rows per sheet, views).")
    patients: int = Field(description="Patients the items are about.")
    seed: int | None = Field(description="The shuffle seed; None: the items file's order.")
    flagged_items: int = Field(
        description="Items whose views include rows a labels file cites (unmarked)."
    )
    unknown_evidence: dict[str, list[str]] = Field(
        description="Item → cited ids that name nothing in its patient's record."
    )
    after_as_of: dict[str, int] = Field(
        default_factory=dict,
        description="Item → cited rows left out of its view for being dated after as_of.",
    )
    items_without_excerpts: list[str] = Field(
        description="Items whose view shows no record excerpt (nothing matched the question)."
    )
    mean_chars: float = Field(description="Mean characters of record text per view.")


def export_labelling(
    items: Sequence[EvalItem],
    store: RecordStore,
    annotators: Sequence[str],
    out: Path,
    *,
    settings: Settings,
    labels: Sequence[Label] | None = None,
    seed: int | None = None,
    max_chars: int = 16_000,
    k: int = 12,
    on_progress: Callable[[int, int], None] | None = None,
) -> LabellingExport:
    """Write a labelling workbook for ``annotators`` into the new folder ``out``.

    Args:
        items: The items to label.
        store: The record store holding their patients.
        annotators: Annotator names (letters, digits, '.', '_', '-'; one sheet each).
        out: The workbook folder: must not exist or be empty (filled sheets are never
            overwritten).
        settings: Tokenizer encoding and lab catalogue of the retrieval.
        labels: Labels whose evidence rows are included among each item's excerpts, unmarked
            (their values are never shown; rows dated after the item's as_of are left out).
        seed: Shuffle the items with this seed (the same order in every sheet).
        max_chars: Characters of record text per view.
        k: Search hits asked for per item.
        on_progress: Called with (views written, items) after each view.

    Raises:
        UserError: A bad annotator name, no items, a patient missing from the store, or an
            output folder that holds files or cannot be written.
    """
    names = _annotator_names(annotators)
    if not items:
        raise UserError("no items to label")
    _check_new_folder(out)
    missing = sorted({i.patient_id for i in items if not store.has_patient(i.patient_id)})
    if missing:
        listed = ", ".join(repr(p) for p in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise UserError(
            f"{len(missing)} patient(s) of the items are not in the store {store.location}: "
            f"{listed}{more}"
        )
    order = list(items)
    if seed is not None:
        random.Random(seed).shuffle(order)
    cited = evidence_from_labels(labels or [])
    temporary = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        if temporary.exists():
            shutil.rmtree(temporary)
        (temporary / "items").mkdir(parents=True)
        shown_excerpts = _write_views(
            order, store, settings, cited, temporary, max_chars, k, on_progress
        )
        sheets = {}
        for name in names:
            rows = [
                item_cells(n, item, name, view_name(n))
                | {"value": "", "unanswerable": "", "evidence": "", "comment": ""}
                for n, item in enumerate(order, start=1)
            ]
            (temporary / f"{name}.csv").write_text(
                sheet_text(SHEET_COLUMNS, rows), encoding="utf-8"
            )
            sheets[name] = out / f"{name}.csv"
        (temporary / "index.html").write_text(render_index(order, names), encoding="utf-8")
        (temporary / "README.md").write_text(_readme(len(order), names), encoding="utf-8")
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(temporary, out)
    except OSError as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise UserError(f"cannot write the workbook {shown(out)}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return LabellingExport(
        folder=out,
        index=out / "index.html",
        sheets=sheets,
        items=len(order),
        patients=len({i.patient_id for i in order}),
        seed=seed,
        flagged_items=sum(1 for i in order if cited.get(i.id)),
        unknown_evidence={
            e.item_id: e.unknown_evidence for e in shown_excerpts if e.unknown_evidence
        },
        after_as_of={e.item_id: e.after_as_of for e in shown_excerpts if e.after_as_of},
        items_without_excerpts=[e.item_id for e in shown_excerpts if not e.excerpts],
        mean_chars=sum(e.chars for e in shown_excerpts) / len(shown_excerpts),
    )


def _write_views(
    order: Sequence[EvalItem],
    store: RecordStore,
    settings: Settings,
    cited: Mapping[str, Sequence[str]],
    folder: Path,
    max_chars: int,
    k: int,
    on_progress: Callable[[int, int], None] | None,
) -> list[ItemExcerpts]:
    """Write every item's view; items are visited patient by patient to read each record once."""
    tokenizer = Tokenizer(settings.model.encoding)
    catalogue = lab_catalogue(settings.tools.lab_catalogue_paths)
    position = {item.id: n for n, item in enumerate(order, start=1)}
    by_patient: dict[str, list[EvalItem]] = defaultdict(list)
    for item in order:
        by_patient[item.patient_id].append(item)
    done: list[ItemExcerpts] = []
    for patient_id, patient_items in by_patient.items():
        scope = store.scope(patient_id)
        rows = PatientRows(scope)
        patient = scope.patient()
        counts = scope.counts()
        line = ", ".join(
            part
            for part in (
                patient.sex or "",
                f"born {patient.birth_date.isoformat()}" if patient.birth_date else "",
                f"died {patient.death_date.isoformat()}" if patient.death_date else "",
                ", ".join(
                    _counted(counts[key], noun)
                    for key, noun in (
                        ("documents", "document"),
                        ("labs", "lab value"),
                        ("events", "event"),
                    )
                ),
            )
            if part
        )
        indexes: dict[object, StructuredIndex] = {}
        for item in patient_items:
            if item.as_of not in indexes:
                indexes[item.as_of] = StructuredIndex(scope, tokenizer, item.as_of, catalogue)
            retriever = PatientRetriever(scope, tokenizer, item.as_of, indexes[item.as_of])
            excerpts = item_excerpts(
                item.id,
                item.question,
                rows,
                retriever,
                cited.get(item.id, ()),
                as_of=item.as_of,
                budget=max_chars,
                k=k,
            )
            n = position[item.id]
            html = render_item_view(item, n, len(order), excerpts, line)
            (folder / view_name(n)).write_text(html, encoding="utf-8")
            done.append(excerpts)
            if on_progress is not None:
                on_progress(len(done), len(order))
    return done


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _annotator_names(annotators: Sequence[str]) -> list[str]:
    names = [name.strip() for name in annotators if name.strip()]
    if not names:
        raise UserError("no annotators: give at least one name (--annotators alice,bob)")
    for name in names:
        if not _NAME.match(name):
            raise UserError(
                f"annotator name {shown(name)!r}: use letters, digits, '.', '_' or '-' (it "
                "names the annotator's sheet file)"
            )
        reserved = reserved_name(name)
        if reserved is not None:
            raise UserError(f"annotator name {reserved}")
    folded = [name.casefold() for name in names]
    repeated = sorted({n for n in folded if folded.count(n) > 1})
    if repeated:
        raise UserError(f"annotator name(s) given twice: {', '.join(repeated)}")
    return names


def _check_new_folder(out: Path) -> None:
    kind = path_kind(out, "--out")
    if kind in ("file", "other"):
        raise UserError(f"--out {shown(out)} is a file; give a new folder for the workbook")
    if kind == "folder" and any(out.iterdir()):
        raise UserError(
            f"--out {shown(out)} already holds files; give a new or empty folder (a workbook "
            "is never written over: its sheets may hold annotators' work)"
        )
    parent = out.absolute().parent
    if path_kind(parent, "--out") != "folder":
        raise UserError(f"--out {shown(out)}: the folder {shown(parent)} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {shown(out)}: the folder {shown(parent)} is not writable")


def _readme(items: int, annotators: Sequence[str]) -> str:
    sheets = "\n".join(f"- `{name}.csv`" for name in annotators)
    return f"""# Labelling workbook

{items} item(s) to label. Open `index.html` in a browser: it lists every item, and each item's
page shows the question, the answer format and excerpts of the patient's record with their ids.

Each annotator fills their own sheet (one row per item, the same order in every sheet):

{sheets}

- `value`: the answer, in the format of the row's `answer_format` column (dates YYYY-MM-DD:
  keep the column as text so that the spreadsheet does not reformat them; lists separated
  by `;`).
- `unanswerable`: `yes` when the record does not say (or write `unanswerable` in `value`).
- `evidence`: the ids of the record rows the answer rests on, separated by `;`.
- `comment`: anything worth saying.

Leave `value` empty to skip an item. Do not edit the other columns. Save as CSV (UTF-8).

{BLIND_NOTE}
"""
