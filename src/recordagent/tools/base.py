"""What every record tool shares: citations, results, the Tool wrapper and the registry.

A tool is a pydantic input model (its field descriptions are the JSON schema the model reads)
and a pure function ``fn(scope, args) -> result`` over one patient's :class:`PatientScope`.
Results carry :class:`SourceRef` citations and render compactly for the model within a token
budget. Bad arguments raise :class:`~recordagent.errors.ToolError`, whose message is written for
the model to correct its call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recordagent.errors import ToolError, validation_problems
from recordagent.records.scope import PatientScope
from recordagent.records.tokens import Tokenizer

__all__ = ["SourceRef", "Tool", "ToolRegistry", "ToolResult", "bind", "fit_lines"]


class SourceRef(BaseModel):
    """A pointer to the record row a statement rests on."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["document", "chunk", "lab", "event"] = Field(description="What is cited.")
    id: str = Field(description="Document, chunk, lab row or event id.")
    document_id: str | None = Field(
        default=None, description="The document a chunk belongs to (chunks only)."
    )


class ToolResult(BaseModel):
    """Base of every tool result."""

    citations: list[SourceRef] = Field(
        default_factory=list, description="Record rows this result is read from."
    )

    def lines(self) -> list[str]:
        """The result as text lines for the model, most important first."""
        raise NotImplementedError

    def render(self, tokenizer: Tokenizer, max_tokens: int) -> str:
        """The result as text within ``max_tokens`` (cut at whole lines, with a note)."""
        return fit_lines(self.lines(), tokenizer, max_tokens)

    def render_shown(self, tokenizer: Tokenizer, max_tokens: int) -> tuple[str, list[SourceRef]]:
        """The rendered text, and the citations of the rows it actually shows.

        A render cut to fit ``max_tokens`` shows fewer rows than the result holds; only those
        it shows may be cited.
        """
        lines = self.lines()
        text, kept = _fit(lines, tokenizer, max_tokens)
        return text, self.shown_citations(lines[:kept], complete=kept == len(lines))

    def shown_citations(self, shown: list[str], complete: bool) -> list[SourceRef]:
        """Citations whose id appears, in brackets, on a shown line."""
        visible = "\n".join(shown)
        return [ref for ref in self.citations if f"[{ref.id}]" in visible]


def fit_lines(lines: list[str], tokenizer: Tokenizer, max_tokens: int) -> str:
    """Join whole lines while they fit in ``max_tokens``; say how many were left out."""
    return _fit(lines, tokenizer, max_tokens)[0]


def _fit(lines: list[str], tokenizer: Tokenizer, max_tokens: int) -> tuple[str, int]:
    """The joined lines that fit (with a note on the rest), and how many lines were kept."""
    kept: list[str] = []
    used = 0
    for k, line in enumerate(lines):
        cost = tokenizer.count(line) + 1
        if used + cost > max_tokens and kept:
            note = f"[{len(lines) - k} more line(s) not shown: narrow the request or page]"
            return "\n".join([*kept, note]), k
        kept.append(line)
        used += cost
    return "\n".join(kept), len(kept)


InputT = TypeVar("InputT", bound=BaseModel)


@dataclass(frozen=True)
class Tool(Generic[InputT]):
    """A named, described tool: an input model and a pure function over a patient scope."""

    name: str
    description: str
    input_model: type[InputT]
    fn: Callable[[PatientScope, InputT], ToolResult]

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema of the tool."""
        parameters = _clean_schema(self.input_model.model_json_schema())
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    def parse(self, arguments: str | dict[str, Any] | None) -> InputT:
        """Validate arguments from a model (JSON text or a dict).

        Raises:
            ToolError: Arguments are not JSON or do not fit the input model; the message says
                which field is wrong and how.
        """
        if arguments is None or arguments == "":
            arguments = {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise ToolError(f"{self.name}: arguments are not valid JSON ({exc.msg})") from exc
        if not isinstance(arguments, dict):
            raise ToolError(f"{self.name}: arguments must be a JSON object")
        try:
            return self.input_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(validation_problems(exc, whole="arguments"))
            raise ToolError(f"{self.name}: {problems}") from exc

    def run(self, scope: PatientScope, arguments: str | dict[str, Any] | None) -> ToolResult:
        """Parse the arguments and run the tool over ``scope``."""
        return self.fn(scope, self.parse(arguments))


def bind(tool: Tool[InputT], **options: Any) -> Tool[InputT]:
    """``tool`` with keyword options bound into its function, e.g. ``catalogue=…``."""
    return replace(tool, fn=partial(tool.fn, **options))


class ToolRegistry:
    """Tools by name; what a runner offers the model."""

    def __init__(self, tools: Iterable[Tool[Any]] = ()) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool[Any]) -> None:
        """Add a tool.

        Raises:
            ValueError: A tool of that name is registered already.
        """
        if tool.name in self._tools:
            raise ValueError(f"tool '{tool.name}' is registered already")
        self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        """Registered tool names, in registration order."""
        return list(self._tools)

    def get(self, name: str) -> Tool[Any]:
        """The tool called ``name``.

        Raises:
            ToolError: No such tool (the message lists the tools there are).
        """
        tool = self._tools.get(name)
        if tool is None:
            raise ToolError(f"unknown tool '{name}'; available: {', '.join(self._tools)}")
        return tool

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI function-calling schemas of every tool."""
        return [tool.schema() for tool in self._tools.values()]

    def call(
        self, scope: PatientScope, name: str, arguments: str | dict[str, Any] | None
    ) -> ToolResult:
        """Run tool ``name`` with a model's arguments over ``scope``."""
        return self.get(name).run(scope, arguments)


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles: the model reads descriptions, titles only cost tokens."""

    def strip(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v, in_properties=k == "properties" and not in_properties)
                for k, v in node.items()
                if in_properties or not (k == "title" and isinstance(v, str))
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    cleaned: dict[str, Any] = strip(schema)
    return cleaned
