"""The MCP server of one patient: the SDK's low-level server over a :class:`PatientService`.

The low-level server (not the decorator API) because the tools already have their schemas: the
agent's input models, passed through unchanged. Each request is served in a worker thread (the
service does DuckDB work; the event loop keeps serving other sessions).

Every request is audited once, by a server middleware that wraps the whole of it — the
handshake, the SDK's own refusals (an unknown method, malformed params) and the handler — and
writes its line before the result goes back: a request the log cannot record fails instead of
being served unaudited. Handlers add what they know (the tool, argument paths, result size,
row ids) to the request's entry.

Errors: a tool that refuses its arguments answers with ``isError`` and corrective text, as the
agent's tools do (the client's model can correct its call). A resource or prompt this patient
does not have is a protocol error (invalid params) that does not say whether it exists for
someone else. Anything else is a bug: the client gets "internal error" and nothing of the
exception; the log (stderr) has the traceback.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types import methods as mcp_methods
from mcp_types.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import ValidationError

from recordagent.mcp.audit_log import AuditLog, Outcome, argument_paths, unknown_name
from recordagent.mcp.service import DOCUMENT_PAGE, PatientPrompt, PatientService
from recordagent.resources import package_version
from recordagent.tools.base import SourceRef

__all__ = [
    "AUDITED_SCOPE_KEY",
    "CITATIONS_SCHEMA",
    "SERVER_NAME",
    "build_server",
    "server_instructions",
]

SERVER_NAME = "recordagent"

CITATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The record rows the text shows; cite them by id.",
    "properties": {
        "citations": {
            "type": "array",
            "items": SourceRef.model_json_schema(),
        }
    },
    "required": ["citations"],
}
"""Every tool's output schema: the citations of the rows its text shows."""

_READ_ONLY = types.ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

log = logging.getLogger(__name__)


def server_instructions(service: PatientService) -> str:
    """What the server tells a client's model when it connects."""
    return (
        f"Patient-scoped tools over one patient's medical record (patient "
        f"{service.patient_id}), read-only. Every tool, resource and prompt is about this "
        "patient only; no argument can reach another. Start from the record skeleton resource "
        f"({service.skeleton_uri}): what the record holds and when. Tool results show ids in "
        "brackets ('D-0042:3', 'L-17', 'E-5'); the same ids are in each result's structured "
        "citations. Cite them for every statement, and say so when the record does not contain "
        "an answer instead of guessing."
    )


def build_server(service: PatientService, audit: AuditLog) -> Server[Any]:
    """The MCP server serving ``service``'s tools, resources and prompts, audited to ``audit``."""
    handlers = _Handlers(service)
    server: Server[Any] = Server(
        SERVER_NAME,
        version=package_version(),
        title=f"recordagent: patient {service.patient_id}",
        instructions=server_instructions(service),
        # The SDK checks a call's argument headers against the tool's schema: given here, it
        # does not list the tools through the (audited) handler for every call.
        get_tool_input_schema=service.input_schema,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_resource_templates,
        on_read_resource=handlers.read_resource,
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
    )
    server.middleware.append(_AuditEveryRequest(audit))
    return server


@dataclass
class _Entry:
    """What the audit line of the request being served will say (handlers fill it in)."""

    name: str | None = None
    arguments: list[str] = field(default_factory=list)
    outcome: Outcome = "ok"
    error_kind: str | None = None
    result_chars: int = 0
    result_tokens: int | None = None
    ids: list[str] = field(default_factory=list)


_ENTRY: ContextVar[_Entry | None] = ContextVar("recordagent_mcp_audit_entry", default=None)


def _note(**fields: Any) -> None:
    """Add to the audit entry of the request being served."""
    entry = _ENTRY.get()
    if entry is not None:
        for key, value in fields.items():
            setattr(entry, key, value)


class _Refused(Exception):
    """The client asked for something this patient's server does not have."""

    def __init__(self, kind: str, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.name = name


class _AuditEveryRequest:
    """Server middleware: one audit line per request, whatever becomes of it."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    async def __call__(self, ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:  # a notification: nothing is served
            return await call_next(ctx)
        known = ctx.method in mcp_methods.SPEC_CLIENT_METHODS
        method = ctx.method if known else unknown_name(ctx.method)
        _mark_audited(ctx)
        entry = _Entry()
        token = _ENTRY.set(entry)
        started = time.perf_counter()
        try:
            result = await call_next(ctx)
            # A cancel that came while the work ran in its thread takes effect here: the reply
            # is not sent, so the line must not say it was served.
            await anyio.lowlevel.checkpoint()
            return result
        except anyio.get_cancelled_exc_class():  # the client cancelled, or the server stops
            # Nothing was sent: no rows were read by the client, whatever the handler noted.
            entry.outcome, entry.error_kind, entry.ids = "cancelled", None, []
            entry.result_chars, entry.result_tokens = 0, None
            raise
        except _Refused as refusal:
            entry.outcome, entry.error_kind = "refused", refusal.kind
            entry.name = entry.name or refusal.name
            raise MCPError(INVALID_PARAMS, refusal.message) from None
        except MCPError as error:  # the SDK's: an unknown method, a request before the handshake
            entry.outcome, entry.error_kind = "refused", f"mcp_error {error.code}"
            raise
        except ValidationError:  # malformed params, refused by the SDK before any handler
            entry.outcome, entry.error_kind = "refused", "invalid_params"
            raise
        except Exception as exc:
            log.exception("MCP %s failed", method)
            entry.outcome, entry.error_kind = "error", type(exc).__name__
            raise MCPError(INTERNAL_ERROR, "internal error") from None
        finally:
            _ENTRY.reset(token)
            try:
                self.audit.write(method, duration_ms=_ms(started), **asdict(entry))
            except OSError:
                log.exception("MCP %s: the audit log cannot be written", method)
                raise MCPError(INTERNAL_ERROR, "internal error") from None


AUDITED_SCOPE_KEY = "recordagent.mcp.audited"
"""Set on an HTTP request's ASGI scope once the middleware logged it (no second line)."""


def _mark_audited(ctx: ServerRequestContext[Any]) -> None:
    scope = getattr(ctx.request, "scope", None)
    if isinstance(scope, dict):
        scope[AUDITED_SCOPE_KEY] = True


class _Handlers:
    """The request handlers; each notes in the request's audit entry what it served."""

    def __init__(self, service: PatientService) -> None:
        self.service = service

    # -- tools -----------------------------------------------------------------------------

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = [
            types.Tool(
                name=spec["name"],
                description=spec["description"],
                input_schema=spec["parameters"],
                output_schema=CITATIONS_SCHEMA,
                annotations=_READ_ONLY,
            )
            for spec in self.service.tool_specs()
        ]
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        name, arguments = params.name, params.arguments
        served = await anyio.to_thread.run_sync(self.service.call_tool, name, arguments)
        known = name in self.service.registry.names
        _note(
            name=name if known else unknown_name(name),
            arguments=argument_paths(arguments, self.service.input_properties(name)),
            outcome="tool_error" if served.is_error else "ok",
            error_kind=served.error_kind,
            result_chars=len(served.text),
            result_tokens=served.tokens,
            ids=[ref.id for ref in served.citations],
        )
        content: list[types.ContentBlock] = [types.TextContent(type="text", text=served.text)]
        if served.is_error:
            return types.CallToolResult(content=content, is_error=True)
        citations = [ref.model_dump(mode="json") for ref in served.citations]
        return types.CallToolResult(content=content, structured_content={"citations": citations})

    # -- resources -------------------------------------------------------------------------

    async def list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        offset = _offset(params.cursor if params else None)
        service = self.service
        resources: list[types.Resource] = []
        if offset == 0:
            resources += [
                types.Resource(
                    name="skeleton",
                    title=f"Record skeleton of patient {service.patient_id}",
                    uri=service.skeleton_uri,
                    description="What the record holds and when: demographics, event kinds, "
                    "documents by type, the events that matter most, lab analytes. What the "
                    "agent reads first; ids in brackets can be cited.",
                    mime_type="text/plain",
                ),
                types.Resource(
                    name="overview",
                    title=f"Record overview of patient {service.patient_id}",
                    uri=service.overview_uri,
                    description="The record at a glance as data (the chat header's content): "
                    "demographics, span, event kinds, recent and frequent diagnoses, therapy "
                    "lines, milestones, document types, lab counts.",
                    mime_type="application/json",
                ),
            ]
        page = await anyio.to_thread.run_sync(service.documents_page, offset)
        resources += [
            types.Resource(
                name=doc["document_id"],
                title=f"{doc['date']:%Y-%m-%d} {doc['type']}"
                + (f": {doc['title']}" if doc["title"] else ""),
                uri=service.document_uri(doc["document_id"]),
                description=f"A {doc['type']} of {doc['date']:%Y-%m-%d}.",
                mime_type="text/plain",
                size=doc["chars"],
            )
            for doc in page
        ]
        more = len(page) == DOCUMENT_PAGE
        _note(ids=[doc["document_id"] for doc in page])
        return types.ListResourcesResult(
            resources=resources, next_cursor=str(offset + DOCUMENT_PAGE) if more else None
        )

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="document",
            title="A document of this patient, by id",
            uri_template=self.service.document_uri_template,
            description="The whole text of one document, after a header line (id | date | "
            "type | title). Ids come from the timeline, search results and the skeleton.",
            mime_type="text/plain",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        resource = await anyio.to_thread.run_sync(self.service.read_resource, params.uri)
        if resource is None:
            raise _Refused(
                "no_such_resource",
                f"no resource {params.uri!r} for patient {self.service.patient_id}: this "
                "server serves one patient's skeleton, overview and documents "
                f"({self.service.base_uri}/...)",
                unknown_name(params.uri),
            )
        _note(name=resource.kind, result_chars=len(resource.text), ids=resource.ids)
        contents = types.TextResourceContents(
            uri=resource.uri, mime_type=resource.mime_type, text=resource.text
        )
        return types.ReadResourceResult(contents=[contents])

    # -- prompts ---------------------------------------------------------------------------

    async def list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompts = await anyio.to_thread.run_sync(self.service.prompts)
        listed = [
            types.Prompt(
                name=prompt.name,
                title=prompt.item.template_id,
                description=_prompt_description(prompt),
                arguments=[],
            )
            for prompt in prompts
        ]
        return types.ListPromptsResult(prompts=listed)

    async def get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        prompt = await anyio.to_thread.run_sync(self.service.prompt, params.name)
        if prompt is None:
            raise _Refused(
                "no_such_prompt",
                f"no prompt {params.name!r} for patient {self.service.patient_id} "
                "(prompts/list names the templates that apply to this patient)",
                unknown_name(params.name),
            )
        text = self.service.prompt_text(prompt)
        _note(name=prompt.name, arguments=argument_paths(params.arguments), result_chars=len(text))
        content = types.TextContent(type="text", text=text)
        message = types.PromptMessage(role="user", content=content)
        return types.GetPromptResult(description=_prompt_description(prompt), messages=[message])


def _prompt_description(prompt: PatientPrompt) -> str:
    item = prompt.item
    return f"Level {item.level} ({prompt.folder}): {item.question}"


def _offset(cursor: str | None) -> int:
    """The listing offset a cursor stands for (cursors are this server's own offsets)."""
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 12:
        raise _Refused("invalid_cursor", "invalid cursor: pass the nextCursor of a listing")
    return int(cursor)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
