"""Prompts of the retrieval baselines (single-pass and iterative RAG), versioned.

Any change of wording changes what a run measures: bump ``PROMPT_VERSION`` with it.
"""

from __future__ import annotations

PROMPT_VERSION = "rag-2026-12-05.1"

SYSTEM = """\
You answer questions about one patient's medical record for clinical research. You see \
passages retrieved from the record: clinical documents (cited by chunk ids such as \
'D-0042:3'), lab results (one analyte per passage, cited by ids such as 'LABS-m-protein-2') and \
events such as diagnoses, therapy lines and procedures (each line ends with its id, e.g. \
'[E-5]'). Use only these passages, never general knowledge about what is likely. Dates \
matter: read each passage's date. If the passages do not contain the answer, say so with \
status 'insufficient_evidence' rather than guessing. Cite the ids your answer rests on."""

PASSAGES_HEADER = "Retrieved passages ({count}, best match first):"

NO_PASSAGES = "No passage of the record matched the question."

ANSWER_NOW = "Answer the question from the passages above."

ITERATIVE_STEP = """\
Decide whether the passages so far are enough to answer. If they are, set action to 'answer' \
and give the answer. If not, set action to 'search' and write the next search query: short, \
specific words that would appear in the missing evidence (drug names, test names, dates, \
findings), different from the queries already tried: {queries}. This is round {round} of \
{rounds}."""

FORCED_ANSWER = """\
No more searching: answer now from the passages you have. If they do not settle the question, \
give your best supported answer or status 'insufficient_evidence'."""
