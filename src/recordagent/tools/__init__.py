"""Record tools: patient-scoped, pure functions over a PatientScope, exposed to models.

``default_registry()`` holds search_documents, query_labs, get_timeline and read_document;
``registry.schemas()`` gives their OpenAI function-calling schemas and
``registry.call(scope, name, arguments)`` runs one on a model's arguments.
"""

from recordagent.tools._base import SourceRef, Tool, ToolRegistry, ToolResult, fit_lines
from recordagent.tools.catalogue import Analyte, LabCatalogue, load_lab_catalogue
from recordagent.tools.labs import QUERY_LABS, QueryLabsInput, QueryLabsResult, query_labs
from recordagent.tools.read import (
    READ_DOCUMENT,
    ReadDocumentInput,
    ReadDocumentResult,
    read_document,
)
from recordagent.tools.search import (
    SEARCH_DOCUMENTS,
    SearchDocumentsInput,
    SearchDocumentsResult,
    search_documents,
)
from recordagent.tools.timeline import (
    GET_TIMELINE,
    GetTimelineInput,
    GetTimelineResult,
    get_timeline,
)

__all__ = [
    "GET_TIMELINE",
    "QUERY_LABS",
    "READ_DOCUMENT",
    "SEARCH_DOCUMENTS",
    "Analyte",
    "GetTimelineInput",
    "GetTimelineResult",
    "LabCatalogue",
    "QueryLabsInput",
    "QueryLabsResult",
    "ReadDocumentInput",
    "ReadDocumentResult",
    "SearchDocumentsInput",
    "SearchDocumentsResult",
    "SourceRef",
    "Tool",
    "ToolRegistry",
    "ToolResult",
    "default_registry",
    "fit_lines",
    "get_timeline",
    "load_lab_catalogue",
    "query_labs",
    "read_document",
    "search_documents",
]


def default_registry() -> ToolRegistry:
    """A registry with the four record tools (a new one each call: registries are mutable)."""
    return ToolRegistry([GET_TIMELINE, SEARCH_DOCUMENTS, QUERY_LABS, READ_DOCUMENT])
