"""What traces and run logs keep of the model's words: structure, choices, ids and lengths.

Tool arguments keep their names, numbers, dates, schema choices and ids, and the length of any
other text; evidence needs and queries keep their lengths. :mod:`recordagent.runners.trace`
applies these where events are made.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from recordagent.records.schema import EVENT_KINDS

__all__ = ["looks_like_id", "loggable_need", "masked_text", "traced_arguments"]

# Arguments whose values come from a closed vocabulary the tool checks but its schema does not
# list as an enum: a value from it is a choice, not text.
_VOCABULARIES: dict[str, frozenset[str]] = {"kinds": frozenset((*EVENT_KINDS, "document"))}

# A record id as stores and runners make them: no spaces, no quotes, at least one digit.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/#@+-]{0,127}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def looks_like_id(value: str) -> bool:
    """True for a record id as stores and runners make them (no spaces, a digit)."""
    return _ID.fullmatch(value) is not None and any(c.isdigit() for c in value)


def traced_arguments(
    arguments: Mapping[str, Any] | None, schema: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """Tool arguments as a trace keeps them: structure and sizes, never free text.

    Kept as sent: numbers, booleans and nulls; values the tool's schema offers as a choice
    (``enum``, or the event kinds of ``get_timeline``); ISO dates for date fields; document ids
    that look like ids. Any other text —
    a query, an analyte or section name, a reason — may quote the record or be the model's own
    words: it is kept as its length ('<12 characters>'). Argument names the schema does not
    have are the model's words too and are replaced by their position and length.
    """
    if arguments is None:
        return None
    properties: Mapping[str, Any] = (schema or {}).get("properties", {})
    definitions: Mapping[str, Any] = (schema or {}).get("$defs", {})
    kept: dict[str, Any] = {}
    for position, (key, value) in enumerate(arguments.items(), start=1):
        spec = properties.get(key)
        name = key if spec is not None else f"<argument {position}: {len(key)} characters>"
        facets = _facets(spec, definitions)
        if spec is not None:
            facets["choices"] |= _VOCABULARIES.get(key, frozenset())
        kept[name] = _traced_value(key, value, facets)
    return kept


def _traced_value(key: str, value: Any, facets: dict[str, Any]) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if value in facets["choices"]:
            return value
        if facets["date"] and _DATE.fullmatch(value) and _is_date(value):
            return value
        if key == "document_id" and looks_like_id(value):
            return value
        return f"<{len(value)} characters>"
    if isinstance(value, list):
        return [_traced_value(key, v, facets) for v in value]
    return f"<{type(value).__name__}>"


def _facets(spec: Any, definitions: Mapping[str, Any]) -> dict[str, Any]:
    """The choices (enum values) and whether a date is expected, through anyOf/items/$ref."""
    facets: dict[str, Any] = {"choices": set(), "date": False}

    def walk(node: Any, depth: int) -> None:
        if not isinstance(node, Mapping) or depth > 8:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            walk(definitions.get(ref.removeprefix("#/$defs/")), depth + 1)
        for value in node.get("enum") or ():
            if isinstance(value, str):
                facets["choices"].add(value)
        if node.get("format") == "date":
            facets["date"] = True
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key) or ():
                walk(option, depth + 1)
        walk(node.get("items"), depth + 1)

    walk(spec, 0)
    return facets


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def masked_text(text: Any) -> str:
    """Free text as logs keep it: its length."""
    return f"<{len(str(text))} characters>"


def loggable_need(need: Any) -> dict[str, Any]:
    """One evidence need of the agent's plan: its status, and its wording's length."""
    if isinstance(need, dict):
        return {"need": masked_text(need.get("need", "")), "status": need.get("status")}
    return {"need": masked_text(need), "status": None}
