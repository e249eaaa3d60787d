"""Tool calls limited to the record as it stood on an item's as-of day.

A question asked "as of" a day must not be answered from later records. The baselines filter
what they retrieve; the agent's tool calls are bounded here: every tool with an ``end`` argument
gets ``end`` no later than the as-of day, and reading a document written later is refused with a
corrective message.
"""

from __future__ import annotations

import datetime as dt
import json

from recordagent.errors import ToolError
from recordagent.llm.types import ToolCall
from recordagent.records.scope import PatientScope
from recordagent.tools.base import ToolRegistry

__all__ = ["bound_call"]


def bound_call(
    call: ToolCall, tools: ToolRegistry, scope: PatientScope, as_of: dt.date | None
) -> ToolCall:
    """``call`` limited to the record up to ``as_of`` (unchanged when there is no as-of day).

    The arguments are validated first, so the bound applies to the value the tool will use,
    whatever form the model wrote it in. A call that cannot be limited comes back with
    ``error`` set: a message for the model.
    """
    if as_of is None or call.error is not None or call.arguments is None:
        return call
    try:
        tool = tools.get(call.name)
        parsed = tool.parse(call.arguments)
    except ToolError:
        return call  # running it produces the tool's own corrective message
    updates: dict[str, object] = {}
    if "end" in type(parsed).model_fields:
        end = getattr(parsed, "end", None)
        if not isinstance(end, dt.date) or end > as_of:
            updates["end"] = as_of
    document_id = getattr(parsed, "document_id", None)
    if isinstance(document_id, str):
        document = scope.document(document_id)
        if document is not None and document.date.date() > as_of:
            return call.model_copy(
                update={
                    "error": f"{call.name}: document {document.document_id} was written on "
                    f"{document.date:%Y-%m-%d}, after {as_of:%Y-%m-%d} — the day the question "
                    "is asked as of; only the record up to that day may be used"
                }
            )
    if not updates:
        return call
    arguments = parsed.model_copy(update=updates).model_dump(mode="json", exclude_unset=True)
    return call.model_copy(update={"arguments": arguments, "raw_arguments": json.dumps(arguments)})
