"""Record tools: patient-scoped, pure functions over a PatientScope, exposed to models.

``default_registry()`` holds search_documents, query_labs, list_analytes, get_timeline and
read_document;
``registry.schemas()`` gives their OpenAI function-calling schemas and
``registry.call(scope, name, arguments)`` runs one on a model's arguments.
"""

from recordagent.tools.analytes import (
    LIST_ANALYTES,
    ListAnalytesInput,
    ListAnalytesResult,
    list_analytes,
    list_analytes_tool,
)
from recordagent.tools.base import SourceRef, Tool, ToolRegistry, ToolResult, fit_lines
from recordagent.tools.catalogue import Analyte, LabCatalogue, lab_catalogue, load_lab_catalogue
from recordagent.tools.labs import (
    QUERY_LABS,
    LabGroup,
    QueryLabsInput,
    QueryLabsResult,
    query_labs,
    query_labs_tool,
)
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
    "LIST_ANALYTES",
    "QUERY_LABS",
    "READ_DOCUMENT",
    "SEARCH_DOCUMENTS",
    "Analyte",
    "GetTimelineInput",
    "GetTimelineResult",
    "LabCatalogue",
    "LabGroup",
    "ListAnalytesInput",
    "ListAnalytesResult",
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
    "lab_catalogue",
    "list_analytes",
    "list_analytes_tool",
    "load_lab_catalogue",
    "query_labs",
    "query_labs_tool",
    "read_document",
    "search_documents",
]


def default_registry(catalogue: LabCatalogue | None = None) -> ToolRegistry:
    """A registry with the record tools (a new one each call: registries are mutable).

    ``catalogue`` is the lab catalogue the lab tools use (the packaged one when None; settings
    with user catalogue files: ``lab_catalogue(settings.tools.lab_catalogue_paths)``).
    """
    return ToolRegistry(
        [
            GET_TIMELINE,
            SEARCH_DOCUMENTS,
            query_labs_tool(catalogue),
            list_analytes_tool(catalogue),
            READ_DOCUMENT,
        ]
    )
