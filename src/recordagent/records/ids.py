"""Record ids (patient_id, document_id, lab_id, event_id): one canonical form for every id.

The same id typed on macOS (which often writes decomposed, NFD, text) and on Linux or Windows
(composed, NFC) must name one patient, so every loader stores ids in Unicode NFC with the
surrounding white space removed, and every lookup must normalise the requested id the same
way (:func:`normalise_id`). Ids holding characters that cannot be seen or typed reliably
(control characters such as a tab or NUL, invisible format characters such as a zero-width
space or a right-to-left override, line separators) are refused at load
(:func:`id_problem`): two ids that print alike must be alike.
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "ID_WHITESPACE",
    "INVISIBLE_ID_PATTERN",
    "id_problem",
    "invisible_character",
    "normalise_id",
]

ID_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode's White_Space characters: what polars' ``str.strip_chars()`` trims from CSV values.

Python's ``str.strip()`` also trims U+001C-U+001F; the explicit set keeps loads and lookups
identical.
"""

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

INVISIBLE_ID_PATTERN = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
"""The characters :func:`id_problem` refuses, as a regular expression for polars.

Surrogates (Cs) are left out: polars strings are valid UTF-8 and cannot hold one.
"""


def normalise_id(value: str) -> str:
    """The canonical form of an id: surrounding white space removed, then Unicode NFC.

    Loaders store ids in this form; a lookup by id (``RecordStore.has_patient``,
    ``RecordStore.scope``) must apply it to the requested id too.
    """
    stripped = value.strip(ID_WHITESPACE)
    if stripped.isascii():  # the usual case; NFC leaves ASCII as it is
        return stripped
    return unicodedata.normalize("NFC", stripped)


def invisible_character(value: str) -> str | None:
    """The first character of ``value`` that cannot be seen (see the module), described."""
    for char in value:
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            return f"U+{ord(char):04X} ({unicodedata.name(char, 'control character')})"
    return None


def id_problem(value: str) -> str | None:
    """Why ``value`` (already normalised) cannot be an id, or None when it can."""
    invisible = invisible_character(value)
    if invisible is not None:
        return f"id contains the invisible character {invisible}; ids must be visible text"
    return None
