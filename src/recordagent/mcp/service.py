"""What the MCP server serves, without the protocol: one patient's tools, resources and prompts.

:class:`PatientService` holds one :class:`PatientScope`, fixed when it is made: nothing a client
sends can name another patient, because no tool, resource or prompt takes a patient. The tools
are the agent's own registry, with the agent's input schemas and descriptions, rendered within
the agent's tool-result budget, so an MCP client reads exactly what the agent reads. Resources
are the record's skeleton and overview and its documents by id; prompts are the packaged (and
the operator's) SQL-derived question templates whose query finds an instance for this patient,
instantiated, without their reference answers.

Everything here is synchronous DuckDB work over the scope; the server runs it in worker threads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from recordagent.errors import ToolError, UserError
from recordagent.questions.items import EvalItem
from recordagent.questions.silver import SilverRun, silver_instances
from recordagent.questions.silver_templates import SilverTemplateSet, load_silver_templates
from recordagent.questions.template_files import template_kind
from recordagent.records.db import RecordStore
from recordagent.records.overview import record_overview
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer
from recordagent.resources import question_templates_path
from recordagent.runners.agent.skeleton import record_skeleton
from recordagent.runners.answering import question_block
from recordagent.settings import Settings
from recordagent.tools import default_registry, lab_catalogue
from recordagent.tools.base import SourceRef, ToolRegistry

__all__ = [
    "DOCUMENT_PAGE",
    "PatientPrompt",
    "PatientService",
    "ResourceText",
    "ServedResult",
    "packaged_template_folders",
]

DOCUMENT_PAGE = 100
"""Documents listed per page of resources/list."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedResult:
    """A tool call's outcome: the text the agent would read, and the rows it shows."""

    text: str
    citations: list[SourceRef]
    tokens: int
    error_kind: str | None = None

    @property
    def is_error(self) -> bool:
        """Whether the tool refused the call (the text says why, for the model to correct)."""
        return self.error_kind is not None


@dataclass(frozen=True)
class ResourceText:
    """A resource's contents as text, and the record rows it shows."""

    uri: str
    mime_type: str
    text: str
    kind: str
    ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PatientPrompt:
    """A question template instantiated for this patient.

    Attributes:
        name: '<folder>.<template id>', e.g. 'general.latest-hba1c'.
        folder: The template folder's name.
        item: The question about this patient (slots filled), its answer type and as-of day.
    """

    name: str
    folder: str
    item: EvalItem


def packaged_template_folders() -> list[Path]:
    """The packaged template folders whose templates are SQL-derived (askable of any store)."""
    root = question_templates_path()
    folders = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            if template_kind(folder) == "sql":
                folders.append(folder)
        except UserError:
            continue
    return folders


class PatientService:
    """One patient's tools, resources and prompts, for the MCP server.

    Args:
        store: The record store (opened read-only by the server).
        patient_id: The patient; fixed for the service's life.
        settings: Tool catalogue files, the agent's result and skeleton budgets, the tokenizer.
        template_folders: SQL-derived template folders whose applicable templates become
            prompts (default: the packaged ones).
        registry: The tools (default: the agent's).

    Raises:
        UserError: No such patient, or a template folder that is not SQL-derived.
    """

    def __init__(
        self,
        store: RecordStore,
        patient_id: str,
        settings: Settings,
        *,
        template_folders: Sequence[str | Path] | None = None,
        registry: ToolRegistry | None = None,
    ) -> None:
        self.store = store
        self.scope = PatientScope(store, patient_id)
        self.settings = settings
        self.registry = registry or default_registry(
            lab_catalogue(settings.tools.lab_catalogue_paths)
        )
        self.tokenizer = Tokenizer(settings.model.encoding)
        # Built once (half a millisecond a tool): the tools are fixed for the service's life.
        self._specs = {s["function"]["name"]: s["function"] for s in self.registry.schemas()}
        folders = (
            packaged_template_folders() if template_folders is None else list(template_folders)
        )
        self._template_sets: list[tuple[str, SilverTemplateSet]] = []
        for folder in map(Path, folders):
            if template_kind(folder) != "sql":
                raise UserError(
                    f"{folder}: gold-derived templates take their slots from a synthetic "
                    "cohort's gold facts, which a record store does not hold; MCP prompts come "
                    "from SQL-derived templates (question_templates/README.md)"
                )
            if any(name == folder.name for name, _ in self._template_sets):
                raise UserError(
                    f"two template folders are named '{folder.name}' ({folder}); prompt names "
                    "are '<folder>.<template id>', so give each folder a name of its own"
                )
            self._template_sets.append((folder.name, load_silver_templates(folder)))
        self._prompts: dict[str, PatientPrompt] | None = None
        self._prompts_lock = threading.Lock()
        self.base_uri = f"recordagent://patients/{quote(self.scope.patient_id, safe='')}"

    @property
    def patient_id(self) -> str:
        """The one patient this service serves."""
        return self.scope.patient_id

    # -- tools -----------------------------------------------------------------------------

    def tool_specs(self) -> list[dict[str, Any]]:
        """Each tool's name, description and input schema, exactly as the agent is offered them."""
        return list(self._specs.values())

    def input_schema(self, name: str) -> dict[str, Any] | None:
        """The JSON schema of tool ``name``'s arguments (None for an unknown tool)."""
        spec = self._specs.get(name)
        return None if spec is None else dict(spec["parameters"])

    def input_properties(self, name: str) -> dict[str, Any]:
        """The JSON schema properties of tool ``name`` (empty for an unknown tool)."""
        spec = self._specs.get(name)
        properties: dict[str, Any] = spec["parameters"].get("properties", {}) if spec else {}
        return properties

    def call_tool(self, name: str, arguments: dict[str, Any] | None) -> ServedResult:
        """Run one tool over this patient; a refusal is corrective text, not an exception."""
        budget = self.settings.runners.agent.tool_result_tokens
        try:
            result = self.registry.call(self.scope, name, arguments)
            text, shown = result.render_shown(self.tokenizer, budget)
        except ToolError as exc:
            kind = "unknown_tool" if name not in self.registry.names else "call_refused"
            text = f"Error: {exc}"
            return ServedResult(text, [], self.tokenizer.count(text), error_kind=kind)
        return ServedResult(text, shown, self.tokenizer.count(text))

    # -- resources -------------------------------------------------------------------------

    @property
    def skeleton_uri(self) -> str:
        """The record skeleton: what the agent reads before its first tool call."""
        return f"{self.base_uri}/skeleton"

    @property
    def overview_uri(self) -> str:
        """The record overview (the chat header's content) as JSON."""
        return f"{self.base_uri}/overview"

    @property
    def document_uri_template(self) -> str:
        """The URI template of a document of this patient (RFC 6570)."""
        return f"{self.base_uri}/documents/{{document_id}}"

    def document_uri(self, document_id: str) -> str:
        """The URI of one document."""
        return f"{self.base_uri}/documents/{quote(document_id, safe='')}"

    def documents_page(self, offset: int, limit: int = DOCUMENT_PAGE) -> list[dict[str, Any]]:
        """Documents (id, date, type, title, characters) in date order, one page."""
        rows = self.scope.fetch(
            "SELECT document_id, date, type, title, length(text) FROM documents "
            "ORDER BY date, document_id LIMIT $limit OFFSET $offset",
            {"limit": limit, "offset": offset},
        )
        return [
            {"document_id": r[0], "date": r[1], "type": r[2], "title": r[3], "chars": int(r[4])}
            for r in rows
        ]

    def document_count(self) -> int:
        """How many documents the record holds."""
        return int(self.scope.fetch("SELECT count(*) FROM documents")[0][0])

    def read_resource(self, uri: str) -> ResourceText | None:
        """The resource at ``uri``, or None when this server has no such resource.

        A URI naming another patient, or a document this patient's record does not hold, is
        None: the server does not say whether it exists elsewhere.
        """
        if uri == self.skeleton_uri:
            text, refs = record_skeleton(
                self.scope, self.tokenizer, self.settings.runners.agent.skeleton_tokens
            )
            return ResourceText(uri, "text/plain", text, "skeleton", [r.id for r in refs])
        if uri == self.overview_uri:
            return ResourceText(uri, "application/json", self._overview_json(), "overview")
        prefix = f"{self.base_uri}/documents/"
        encoded = uri.removeprefix(prefix)
        # One path segment: an id with '/' (FHIR's 'DocumentReference/…') arrives as %2F.
        if not uri.startswith(prefix) or not encoded or "/" in encoded:
            return None
        document_id = unquote(encoded)
        document = self.scope.document(document_id)
        if document is None:
            return None
        head = f"{document.document_id} | {document.date:%Y-%m-%d} | {document.type}"
        if document.title:
            head += f" | {document.title}"
        return ResourceText(
            uri, "text/plain", f"{head}\n\n{document.text}", "document", [document.document_id]
        )

    def _overview_json(self) -> str:
        patient = self.scope.patient()
        overview = record_overview(self.scope)
        data = {
            "patient": patient.model_dump(mode="json"),
            "overview": overview.model_dump(mode="json"),
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    # -- prompts ---------------------------------------------------------------------------

    def prompts(self) -> list[PatientPrompt]:
        """The templates whose query finds an instance for this patient, instantiated.

        Computed once (the store is read-only while the server runs). A template whose SQL
        fails on this store is left out with a warning: one bad template must not take the
        others' prompts away.
        """
        return list(self._prompt_map().values())

    def prompt(self, name: str) -> PatientPrompt | None:
        """The prompt called ``name``, if this patient has it."""
        return self._prompt_map().get(name)

    def _prompt_map(self) -> dict[str, PatientPrompt]:
        with self._prompts_lock:
            if self._prompts is None:
                self._prompts = {p.name: p for p in self._instantiated()}
            return self._prompts

    def prompt_text(self, prompt: PatientPrompt) -> str:
        """The message a prompt gives the client's model: the task, the question, its type."""
        tools = ", ".join(self.registry.names)
        return "\n".join(
            [
                f"Answer a question about patient {self.patient_id}'s medical record. Read the "
                f"record only through this server's tools ({tools}); the skeleton resource "
                f"({self.skeleton_uri}) shows what the record holds.",
                "",
                question_block(prompt.item),
                "",
                "Cite the ids shown in brackets for every statement ('D-0042:3', 'L-17', "
                "'E-5'). If the record does not contain the answer, say so instead of guessing.",
            ]
        )

    def _instantiated(self) -> list[PatientPrompt]:
        found: list[PatientPrompt] = []
        for folder, template_set in self._template_sets:
            try:
                # A folder at once: the store's needs are looked up once, not per template.
                runs = [silver_instances(template_set, self.store, patient_ids=[self.patient_id])]
            except UserError:
                runs = self._one_by_one(folder, template_set)
            found.extend(
                PatientPrompt(f"{folder}.{instance.item.template_id}", folder, instance.item)
                for run in runs
                for instance in run.instances
            )
        return found

    def _one_by_one(self, folder: str, template_set: SilverTemplateSet) -> list[SilverRun]:
        """Each template of a folder one of whose queries failed: the others still count."""
        runs = []
        for template in template_set.templates:
            one = template_set.model_copy(update={"templates": (template,)})
            try:
                runs.append(silver_instances(one, self.store, patient_ids=[self.patient_id]))
            except UserError as exc:
                log.warning("prompt %s.%s left out: %s", folder, template.id, exc)
        return runs
