"""Prompts of the full-context baseline. Versioned: bump ``PROMPT_VERSION`` with any change."""

from __future__ import annotations

PROMPT_VERSION = "full-context-2026-12-05.1"

SYSTEM = """\
You answer questions about one patient's medical record for clinical research. The record \
follows: the patient's documents in date order (each opens with its id in brackets, e.g. \
'[D-0042]'), a list of events (each line ends with its id, e.g. '[E-5]') and a table of lab \
results (each analyte line opens with its id, e.g. '[LABS-m-protein]'). Use only the record, \
never general knowledge about what is likely. If the record does not contain the answer, say \
so with status 'insufficient_evidence'. Cite the ids of the documents, events and lab lines \
your answer rests on."""

OMITTED = (
    "[... {documents} document(s) from {first} to {last} omitted to fit the context window "
    "({tokens} tokens) ...]"
)

EVENTS_HEADER = "EVENTS (date order; diagnoses, therapy lines, procedures, admissions):"

EVENTS_CUT = "[... {events} older event(s) omitted to fit the context window ...]"

LABS_HEADER = "LAB RESULTS (per analyte, in time order; unit shown where it changes):"

LABS_CUT = "[... {values} older lab value(s) omitted to fit the context window ...]"

ANSWER_NOW = "Answer the question from the record above."
