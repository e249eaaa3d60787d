"""Every command pays for the command line's imports: the heavy front ends load on use only."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_command_line_loads_neither_the_mcp_sdk_nor_the_chat_session() -> None:
    probe = (
        "import json, sys; import recordagent.cli.main; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('mcp', 'uvicorn', 'starlette', 'prompt_toolkit') "
        "or m.startswith(('recordagent.mcp', 'recordagent.chat')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == []
