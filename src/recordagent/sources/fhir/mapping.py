"""FHIR R4 resources → rows of the record store (patients, labs, events, documents).

Pure functions over parsed JSON: :class:`Mapper` turns one resource into rows, resolving
references through the patients (and medications) seen so far, and raises :class:`BadResource`
with a message for anything it cannot map. The loader adds the file and line or entry.
See docs/fhir.md for the mapping table.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from recordagent.records.ids import id_problem, normalise_id
from recordagent.records.value_rules import number_problem

__all__ = [
    "EVENT_TYPES",
    "BadResource",
    "Mapper",
    "Rows",
    "html_to_text",
    "parse_time",
]

Resource = dict[str, Any]

# Resource type → event kind (records.schema.EVENT_KINDS).
EVENT_TYPES: dict[str, str] = {
    "Condition": "diagnosis",
    "Procedure": "procedure",
    "Encounter": "encounter",
    "MedicationRequest": "medication",
    "MedicationAdministration": "medication",
    "MedicationStatement": "medication",
    "Immunization": "medication",
    "DiagnosticReport": "other",
}
# Classes of an inpatient encounter (Encounter.class: HL7 v3 ActCode IMP, ACUTE, NONAC; v2
# table 0004 'I'): such an encounter is a hospital admission in the store, as MIMIC-IV
# admissions and OMOP inpatient visits are — unless it is part of another encounter (a ward or
# ICU segment of the stay), which stays an encounter.
INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC", "I"})
_IMAGING_CATEGORIES = {"RAD", "LP29684-5", "imaging", "radiology"}
_SEXES = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
_TIME = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(?:Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
LEAP_SECONDS = "leap seconds (second 60) stored as second 59.999999"
BELOW_MICROSECOND = "times with digits below a microsecond stored truncated to microseconds"


class BadResource(ValueError):
    """A resource the loader cannot map; the message says why."""


@dataclass
class Rows:
    """Rows mapped from resources, per table, plus what was skipped (by reason)."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    labs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    altered: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items not loaded for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def parse_time(value: Any, altered: dict[str, int] | None = None) -> dt.datetime | None:
    """A FHIR date, dateTime or instant as a naive datetime (wall-clock time, offset dropped).

    Partial dates ('2020', '2020-05') become the first instant of the period. Fractions of a
    second are kept to the microsecond (digits below it are truncated). A leap second (second
    60, which FHIR allows) becomes the minute's last microsecond, keeping the day and the
    order; Python's datetime has no second 60. Each such change is counted in ``altered``.
    """
    if not isinstance(value, str):
        return None
    match = _TIME.match(value.strip())
    if not match:
        raise BadResource(f"'{value}' is not a FHIR date or dateTime")
    y, mo, d, h, mi, s, fraction = match.groups()
    second, micro = int(s or 0), int((fraction or "")[:6].ljust(6, "0"))
    if fraction and fraction[6:].strip("0") and altered is not None:
        altered[BELOW_MICROSECOND] = altered.get(BELOW_MICROSECOND, 0) + 1
    if second == 60:
        second, micro = 59, 999_999
        if altered is not None:
            altered[LEAP_SECONDS] = altered.get(LEAP_SECONDS, 0) + 1
    try:
        return dt.datetime(
            int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), second, micro
        )
    except ValueError as exc:
        raise BadResource(f"'{value}' is not a valid date: {exc}") from exc


def _first_time(resource: Resource, rows: Rows, *paths: str) -> dt.datetime | None:
    for path in paths:
        value: Any = resource
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        found = parse_time(value, rows.altered)
        if found is not None:
            return found
    return None


def _concept_text(concept: Any) -> str | None:
    """CodeableConcept.text, else the first coding's display, else its code."""
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return str(concept["text"]).strip()
    for coding in concept.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"]).strip()
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return None


def _concept_code(concept: Any, prefer: str | None = None) -> str | None:
    """The code of the coding in system ``prefer`` if any, else of the first coding."""
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if c.get("code")]
    if prefer is not None:
        for coding in codings:
            if prefer in str(coding.get("system", "")):
                return str(coding["code"])
    return str(codings[0]["code"]) if codings else None


def _local_code(concept: Any) -> str | None:
    """A laboratory's own code beside a LOINC coding: the first coding of another system."""
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if c.get("code")]
    if not any("loinc" in str(c.get("system", "")) for c in codings):
        return None  # the first coding is already the analyte code
    others = [c for c in codings if "loinc" not in str(c.get("system", ""))]
    return str(others[0]["code"]) if others else None


def _category_codes(resource: Resource) -> list[str]:
    codes = []
    for concept in resource.get("category") or []:
        for coding in concept.get("coding") or []:
            if coding.get("code"):
                codes.append(str(coding["code"]))
    return codes


def _number(value: Any) -> float | None:
    """A JSON number as a float; one the store cannot hold is a bad resource."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError as exc:  # an integer of hundreds of digits
        raise BadResource(f"holds a number too large for any measurement: {exc}") from exc
    problem = number_problem(number)
    if problem is not None:
        # Python's json reads NaN, Infinity and 1e999 (inf), none of which is FHIR JSON.
        raise BadResource(f"holds the number {number!r}: {problem}")
    return number


class _TextOnly(HTMLParser):
    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The text of an HTML document: tags dropped, block elements on lines of their own."""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def decode_attachment(attachment: dict[str, Any], rows: Rows) -> str | None:
    """The plain text of an attachment; None (counted in ``rows.skipped``) when not loadable."""
    data = attachment.get("data")
    content_type = str(attachment.get("contentType") or "text/plain")
    media = content_type.split(";")[0].strip().lower()
    if data is None:
        rows.skip("attachment without data (url only)" if attachment.get("url") else "empty")
        return None
    if media not in ("text/plain", "text/html"):
        rows.skip(f"attachment {media}")
        return None
    charset = "utf-8"
    found = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    if found:
        charset = found.group(1)
    try:
        raw = base64.b64decode(str(data), validate=True)
        text = raw.decode(charset)
    except (binascii.Error, ValueError) as exc:
        raise BadResource(f"attachment data is not valid base64 {charset} text: {exc}") from exc
    except LookupError as exc:
        raise BadResource(f"unknown charset '{charset}' in the attachment") from exc
    if "\x00" in text:  # binary content labelled as text, or UTF-16 labelled as UTF-8
        raise BadResource(f"attachment data is not {charset} text: it holds a NUL byte")
    if media == "text/html":
        text = html_to_text(text)
    if not text.strip():
        rows.skip("empty attachment")
        return None
    return text


@dataclass
class Mapper:
    """Maps resources to rows; remembers patients and medications for references."""

    patients: dict[str, str] = field(default_factory=dict)  # reference → patient_id
    medications: dict[str, str] = field(default_factory=dict)  # reference → label
    noted_reports: set[str] = field(default_factory=set)  # DiagnosticReport ids with a DocRef

    def remember(self, resource: Resource, full_url: str | None = None) -> None:
        """Register a Patient or Medication so later references to it resolve."""
        kind = resource.get("resourceType")
        rid = resource.get("id")
        keys = [k for k in (full_url, f"{kind}/{rid}" if rid else None) if k]
        if kind == "Patient":
            patient_id = _checked_id(str(rid or (full_url or "").rsplit(":", 1)[-1]))
            if not patient_id:
                raise BadResource("a Patient without id")
            for key in keys:
                self.patients[key] = patient_id
        elif kind == "Medication":
            label = _concept_text(resource.get("code")) or str(rid)
            for key in keys:
                self.medications[key] = label
        elif kind == "DocumentReference":
            for ident in resource.get("identifier") or []:
                value = str(ident.get("value") or "")
                if value.startswith("urn:uuid:"):
                    self.noted_reports.add(value.removeprefix("urn:uuid:"))
            for related in (resource.get("context") or {}).get("related") or []:
                ref = str(related.get("reference") or "")
                if ref.startswith("DiagnosticReport/"):
                    self.noted_reports.add(ref.removeprefix("DiagnosticReport/"))

    @staticmethod
    def _key(reference: str) -> str:
        if reference.startswith(("http://", "https://")):
            parts = reference.rstrip("/").split("/")
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            return "/".join(parts[-2:])
        return reference

    def _patient(self, resource: Resource) -> str:
        holder = resource.get("subject") or resource.get("patient")
        if not isinstance(holder, dict) or not holder.get("reference"):
            raise BadResource("has no subject (or patient) reference")
        reference = str(holder["reference"])
        patient = self.patients.get(self._key(reference))
        if patient is None:
            raise BadResource(f"refers to '{reference}', which is not a Patient in the input")
        return patient

    def map(self, resource: Resource, rows: Rows, entry_id: str) -> None:
        """Append the rows ``resource`` maps to (or count it as skipped)."""
        kind = str(resource.get("resourceType") or "")
        given_id = str(resource.get("id") or entry_id)
        rid = _checked_id(given_id)
        if kind == "Patient":
            rows.patients.append(
                {
                    "patient_id": self.patients.get(f"Patient/{given_id}", rid),
                    "sex": _SEXES.get(str(resource.get("gender", "")).lower()),
                    "birth_date": _date(resource.get("birthDate"), rows),
                    "death_date": _date(resource.get("deceasedDateTime"), rows),
                }
            )
        elif kind == "Observation":
            self._observation(resource, rid, rows)
        elif kind == "DocumentReference":
            self._document_reference(resource, rid, rows)
        elif kind in EVENT_TYPES:
            self._event(kind, resource, rid, rows)
            if kind == "DiagnosticReport":
                self._presented_form(resource, rid, rows)
        elif kind == "Medication":
            pass  # only labels medication references
        else:
            rows.skip(f"resource {kind or '(no resourceType)'}")

    def _observation(self, res: Resource, rid: str, rows: Rows) -> None:
        patient = self._patient(res)
        time = _first_time(
            res, rows, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"
        )
        if time is None:
            rows.skip("undated Observation")
            return
        categories = _category_codes(res)
        category = "laboratory" if "laboratory" in categories else None
        if category is None and categories:
            category = categories[0]
        name = _concept_text(res.get("code")) or "observation"
        base = {
            "patient_id": patient,
            "time": time,
            "category": category,
            "fluid": None,
            "priority": None,
            "comment": "; ".join(str(n["text"]) for n in res.get("note") or [] if n.get("text"))
            or None,
        }
        components = res.get("component") or []
        parts = [(f"Observation/{rid}", res, name)]
        if components:
            parts = [
                (
                    f"Observation/{rid}/{i}",
                    comp,
                    _concept_text(comp.get("code")) or f"{name} component {i}",
                )
                for i, comp in enumerate(components)
            ]
        for lab_id, holder, analyte in parts:
            rows.labs.append(
                {
                    "lab_id": lab_id,
                    **base,
                    "analyte_code": _concept_code(holder.get("code"), "loinc"),
                    "local_code": _local_code(holder.get("code")),
                    "analyte_name": analyte,
                    **_value(holder),
                }
            )

    def _event(self, kind: str, res: Resource, rid: str, rows: Rows) -> None:
        patient = self._patient(res)
        start = end = None
        code_field = "code"
        detail: str | None = None
        if kind == "Condition":
            start = _first_time(res, rows, "onsetDateTime", "onsetPeriod.start", "recordedDate")
            end = _first_time(res, rows, "abatementDateTime", "abatementPeriod.end")
            detail = _concept_code(res.get("clinicalStatus"))
        elif kind == "Procedure":
            start = _first_time(res, rows, "performedDateTime", "performedPeriod.start")
            end = _first_time(res, rows, "performedPeriod.end")
        elif kind == "Encounter":
            start = _first_time(res, rows, "period.start")
            end = _first_time(res, rows, "period.end")
            code_field = "type"
            reasons = [_concept_text(r) for r in res.get("reasonCode") or []]
            encounter_class = _class_code(res)
            parts = [f"class {encounter_class}"] if encounter_class else []
            detail = "; ".join(parts + [r for r in reasons if r]) or None
        elif kind.startswith("Medication"):
            start = _first_time(
                res,
                rows,
                "authoredOn",
                "effectiveDateTime",
                "effectivePeriod.start",
                "dateAsserted",
            )
            end = _first_time(res, rows, "effectivePeriod.end")
            code_field = "medicationCodeableConcept"
            dosage = res.get("dosageInstruction") or res.get("dosage") or []
            if isinstance(dosage, dict):
                dosage = [dosage]
            detail = "; ".join(str(d["text"]) for d in dosage if d.get("text")) or None
        elif kind == "Immunization":
            start = _first_time(res, rows, "occurrenceDateTime", "recorded")
            code_field = "vaccineCode"
            detail = "immunization"
        elif kind == "DiagnosticReport":
            start = _first_time(res, rows, "effectiveDateTime", "effectivePeriod.start", "issued")
            end = _first_time(res, rows, "effectivePeriod.end")
            detail = res.get("conclusion")
        if start is None:
            rows.skip(f"undated {kind}")
            return
        concept = res.get(code_field)
        if isinstance(concept, list):
            concept = concept[0] if concept else None
        label = _concept_text(concept)
        if label is None and kind.startswith("Medication"):
            ref = (res.get("medicationReference") or {}).get("reference")
            if ref:
                label = self.medications.get(self._key(str(ref)))
                if label is None:
                    raise BadResource(f"refers to '{ref}', which is not a Medication in the input")
        if label is None and kind == "Encounter":
            label = _class_code(res)
        event_kind = EVENT_TYPES[kind]
        if kind == "Encounter" and _class_code(res) in INPATIENT_CLASSES and not res.get("partOf"):
            event_kind = "admission"  # an inpatient stay, whatever local type it carries
        if kind == "DiagnosticReport" and _IMAGING_CATEGORIES & set(_category_codes(res)):
            event_kind = "imaging"
        rows.events.append(
            {
                "event_id": f"{kind}/{rid}",
                "patient_id": patient,
                "start_time": start,
                "end_time": end,
                "kind": event_kind,
                "code": _concept_code(concept),
                "label": label or kind,
                "detail": str(detail) if detail else None,
            }
        )

    def _document_reference(self, res: Resource, rid: str, rows: Rows) -> None:
        patient = self._patient(res)
        date = _first_time(res, rows, "date", "context.period.start")
        if date is None:
            rows.skip("undated DocumentReference")
            return
        kind = _concept_text(res.get("type")) or "clinical note"
        title = res.get("description") or kind
        for i, content in enumerate(res.get("content") or []):
            text = decode_attachment(content.get("attachment") or {}, rows)
            if text is None:
                continue
            rows.documents.append(
                {
                    "document_id": f"DocumentReference/{rid}" + (f"/{i}" if i else ""),
                    "patient_id": patient,
                    "date": date,
                    "type": kind,
                    "title": str(title),
                    "text": text,
                }
            )

    def _presented_form(self, res: Resource, rid: str, rows: Rows) -> None:
        forms = res.get("presentedForm") or []
        if not forms:
            return
        if rid in self.noted_reports:
            rows.skip("presentedForm also in a DocumentReference", len(forms))
            return
        patient = self._patient(res)
        date = _first_time(res, rows, "effectiveDateTime", "effectivePeriod.start", "issued")
        if date is None:
            rows.skip("undated DiagnosticReport", len(forms))
            return
        kind = _concept_text(res.get("code")) or "report"
        for i, form in enumerate(forms):
            text = decode_attachment(form, rows)
            if text is None:
                continue
            rows.documents.append(
                {
                    "document_id": f"DiagnosticReport/{rid}/presentedForm/{i}",
                    "patient_id": patient,
                    "date": date,
                    "type": kind,
                    "title": str(form.get("title") or kind),
                    "text": text,
                }
            )


def _date(value: Any, rows: Rows) -> dt.date | None:
    found = parse_time(value, rows.altered)
    return found.date() if found else None


def _checked_id(value: str) -> str:
    """A resource id in the store's canonical form (NFC, no surrounding white space)."""
    ident = normalise_id(value)
    problem = id_problem(ident)
    if problem is not None:
        raise BadResource(f"has an unusable id {ident!r}: {problem}")
    return ident


def _value(holder: Resource) -> dict[str, Any]:
    """value_num, value_text, unit, flag, ref_low, ref_high of an Observation or component."""
    out: dict[str, Any] = {"value_num": None, "value_text": None, "unit": None}
    quantity = holder.get("valueQuantity")
    if isinstance(quantity, dict):
        out["value_num"] = _number(quantity.get("value"))
        out["unit"] = quantity.get("unit") or quantity.get("code")
        if quantity.get("comparator") and out["value_num"] is not None:
            out["value_text"] = f"{quantity['comparator']}{quantity.get('value')}"
    elif isinstance(holder.get("valueString"), str):
        out["value_text"] = holder["valueString"]
    elif isinstance(holder.get("valueCodeableConcept"), dict):
        out["value_text"] = _concept_text(holder["valueCodeableConcept"])
    elif "valueInteger" in holder:
        out["value_num"] = _number(holder.get("valueInteger"))
    elif "valueBoolean" in holder:
        out["value_text"] = str(holder["valueBoolean"]).lower()
    elif isinstance(holder.get("dataAbsentReason"), dict):
        out["value_text"] = _concept_text(holder["dataAbsentReason"])
    interpretation = holder.get("interpretation") or []
    out["flag"] = None
    if interpretation:
        out["flag"] = _concept_code(interpretation[0]) or _concept_text(interpretation[0])
    ranges = holder.get("referenceRange") or []
    low = (ranges[0].get("low") or {}) if ranges else {}
    high = (ranges[0].get("high") or {}) if ranges else {}
    out["ref_low"] = _number(low.get("value"))
    out["ref_high"] = _number(high.get("value"))
    return out


def _class_code(res: Resource) -> str | None:
    """The code of an Encounter's class, e.g. 'AMB', 'IMP' (upper case); None when absent.

    R4 writes the class as a Coding; R5 as a list of CodeableConcepts (the first coding of the
    first is taken).
    """
    value = res.get("class")
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict) and "coding" in value:
        codings = value.get("coding") or []
        value = codings[0] if codings and isinstance(codings[0], dict) else None
    if not isinstance(value, dict):
        return None
    code = str(value.get("code") or "").strip()
    return code.upper() or None
