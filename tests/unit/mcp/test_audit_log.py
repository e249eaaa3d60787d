"""The audit log keeps paths, sizes and ids; a client's own words only as their lengths."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from recordagent.errors import UserError
from recordagent.mcp.audit_log import (
    MAX_LOGGED_IDS,
    MAX_LOGGED_PATHS,
    AuditLog,
    argument_paths,
    read_audit,
    unknown_name,
)

QUERY_LABS = {"analyte": {"type": "string"}, "start": {"type": "string"}}


def test_argument_paths_name_known_fields_and_never_their_values() -> None:
    paths = argument_paths({"analyte": "Hypercalcaemia secret", "start": "2020-01-01"}, QUERY_LABS)
    assert paths == ["analyte", "start"]


def test_argument_paths_index_lists_and_mark_empty_containers() -> None:
    paths = argument_paths({"types": ["diagnosis", "therapy"], "kinds": [], "x": {}}, {"types": {}})
    assert paths[:2] == ["types[0]", "types[1]"]
    assert paths[2] == "<argument 2: 5 characters>[]"
    assert paths[3] == "<argument 3: 1 characters>{}"


def test_argument_paths_log_unknown_and_nested_keys_by_length_only() -> None:
    secret = "patient has HIV"
    paths = argument_paths({secret: {secret: 1}}, QUERY_LABS)
    assert paths == ["<argument 1: 15 characters>.<key 1: 15 characters>"]
    assert secret not in json.dumps(paths)


def test_argument_paths_are_capped_with_a_count_of_the_rest() -> None:
    paths = argument_paths({"analyte": list(range(MAX_LOGGED_PATHS + 10))}, QUERY_LABS)
    assert len(paths) == MAX_LOGGED_PATHS + 1
    assert paths[-1] == "<10 more>"


def test_unknown_names_are_logged_as_their_length() -> None:
    assert unknown_name("drop table labs") == "<unknown: 15 characters>"


def test_records_are_appended_as_json_lines_with_the_server_and_patient(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "mcp.jsonl"
    with AuditLog(path, "srv1", "A") as audit:
        audit.write("tools/call", name="query_labs", ids=["LA1", "LA2"], result_chars=10)
    with AuditLog(path, "srv2", "A") as audit:
        audit.write("server/stop")
    records = read_audit(path)
    assert [(r.server, r.method, r.patient_id) for r in records] == [
        ("srv1", "tools/call", "A"),
        ("srv2", "server/stop", "A"),
    ]
    assert records[0].ids == ["LA1", "LA2"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_ids_beyond_the_cap_are_counted_not_logged(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.jsonl", "s", "A") as audit:
        record = audit.write("tools/call", ids=[f"L{i}" for i in range(MAX_LOGGED_IDS + 3)])
    assert len(record.ids) == MAX_LOGGED_IDS
    assert record.ids_not_logged == 3


def test_lines_from_many_threads_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with AuditLog(path, "s", "A") as audit:

        def write_many() -> None:
            for _ in range(200):
                audit.write("tools/call", ids=[f"L{i}" for i in range(40)])

        threads = [threading.Thread(target=write_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(read_audit(path)) == 800


def test_an_audit_file_that_cannot_be_opened_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="audit log .*: cannot open it for appending"):
        AuditLog(tmp_path, "s", "A")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot open it"):
        AuditLog(tmp_path / "file" / "audit.jsonl", "s", "A")


def test_a_closed_log_refuses_to_write(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.jsonl", "s", "A")
    audit.close()
    with pytest.raises(OSError, match="closed"):
        audit.write("tools/list")


def test_deep_and_huge_arguments_are_cut_and_counted_cheaply() -> None:
    deep: object = "leaf"
    for _ in range(500):
        deep = [deep]
    paths = argument_paths({"kinds": deep}, {"kinds": {}})
    assert paths == ["kinds" + "[0]" * 8 + "<deeper>"]
    huge = argument_paths({"kinds": [0] * 1_000_000}, {"kinds": {}})
    assert len(huge) == MAX_LOGGED_PATHS + 1
    assert huge[-1] == "<over 100,000 more>"
