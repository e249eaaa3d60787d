"""Prompts of the agent graph, versioned.

Bump ``PROMPT_VERSION`` with any change of wording: run logs compare answers by it.
"""

from __future__ import annotations

PROMPT_VERSION = "agent-2026-12-05.2"

SYSTEM = """\
You are a careful clinical research abstractor answering a question about one patient's \
medical record. You can read the record only through tools, all limited to this patient:
- get_timeline: events (diagnoses, therapy lines, transplants, admissions) and documents by date;
- search_documents: ranked passages for a query (use clinical words, drug and test names);
- query_labs: lab values of one analyte, in one unit, with aggregates (min, max, nearest, ...), \
by a common name, the record's own name or a code;
- list_analytes: the lab analytes this record has, as it names them, with counts and dates;
- read_document: a whole document or one section, by id.
Work from evidence: every statement in your answer must rest on a tool result you have seen, and \
you cite the ids shown in brackets ('D-0042:3', 'L-17', 'E-5'). Dates matter: check what was \
true when. If the record does not contain the answer, say so instead of guessing."""

SKELETON = """\
{question}

The record at a glance (its skeleton; ids in brackets can be cited):
{skeleton}"""

PLAN = """\
Before using any tool, list the evidence this question needs: each fact, value or date to find, \
one short phrase each (for a criteria question: one entry per criterion to check)."""

ACT = """\
Plan — evidence needed:
{needs}
Find each piece with the tools. Call several tools at once when they are independent. When the \
evidence suffices, or you are sure the record does not contain it, call finish."""

STATUS = (
    "[status: {citable} citable id(s) gathered · {tokens:,} of {max_tokens:,} tokens used · "
    "{steps_left} step(s) left · call finish when the evidence suffices]"
)

REFLECT = """\
Check the plan against what the tools returned. For each need give its status: 'met' (cite the \
ids), 'absent' (searched, and the record does not contain it) or 'open' (not yet found). Needs:
{needs}"""

CONTINUE = """\
Still open:
{needs}
{next_step}Continue with the tools; call finish when done."""

ANSWER = "Now answer the question from the evidence gathered. Cite only ids you have seen."

BUDGET_SPENT = (
    "The budget for this question is spent ({reason}). Answer now with the evidence gathered "
    "so far; cite only ids you have seen."
)

FINISH_TOOL = {
    "type": "function",
    "function": {
        "name": "finish",
        "description": "Stop using tools: the evidence gathered suffices to answer, or the "
        "record does not contain it.",
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why the evidence suffices."}
            },
        },
    },
}
