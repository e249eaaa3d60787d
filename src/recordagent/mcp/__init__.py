"""recordagent's patient-scoped tools as a Model Context Protocol server.

One server process serves one patient, fixed at start (:func:`serve_patient`): the agent's
tools with the agent's schemas, the record skeleton, overview and documents as resources, the
SQL-derived question templates that apply to the patient as prompts, every request audited
(:class:`AuditLog`: ids and sizes, never record text). ``recordagent mcp`` is this plus flags.
"""

from recordagent.mcp.audit_log import AuditLog, AuditRecord, argument_paths, read_audit
from recordagent.mcp.serve import (
    HttpEndpoint,
    StaticToken,
    check_token,
    is_loopback,
    parse_endpoint,
    serve_patient,
)
from recordagent.mcp.server import CITATIONS_SCHEMA, build_server, server_instructions
from recordagent.mcp.service import PatientPrompt, PatientService, packaged_template_folders

__all__ = [
    "CITATIONS_SCHEMA",
    "AuditLog",
    "AuditRecord",
    "HttpEndpoint",
    "PatientPrompt",
    "PatientService",
    "StaticToken",
    "argument_paths",
    "build_server",
    "check_token",
    "is_loopback",
    "packaged_template_folders",
    "parse_endpoint",
    "read_audit",
    "serve_patient",
    "server_instructions",
]
