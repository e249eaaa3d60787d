"""Every Python example in README.md, docs/ and the template READMEs runs (one case per block).

How the blocks run and the ``<!-- docs-test: ... -->`` setup vocabulary: tests/docs_support.py.
A page runs once per session in a child process; each of its blocks is then one case, so a
failure names the page and line of the block (``README.md:123``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.docs_support import (
    REPO,
    BlockResult,
    DirectiveError,
    DocBlock,
    TinyCohort,
    build_tiny_cohort,
    collect,
    command_problem,
    doc_pages,
    run_page,
    shell_commands,
)

BLOCKS = [block for page in doc_pages() for block in collect(page)]
SHELL_PAGES = [page for page in doc_pages() if shell_commands(page)]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (xdist workers take turns; the first one does it)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def docs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder this session's xdist workers share (the session's own folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "docs_code"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def tiny_cohort(docs_root: Path) -> TinyCohort:
    """The tiny synthetic cohort, its store and a sampled study: built once per session."""
    root = docs_root / "tiny_cohort"
    with _locked(docs_root / "tiny_cohort.lock"):
        done = root / "done"
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a worker that died half-way
            root.mkdir()
            cohort = build_tiny_cohort(root)
            done.write_text("", encoding="utf-8")
            return cohort
    return TinyCohort.under(root)


def _stored(page: str, docs_root: Path) -> Path:
    return docs_root / (re.sub(r"[^A-Za-z0-9]+", "_", page) + ".json")


def _run_unless_busy(page: str, docs_root: Path, cohort: TinyCohort, *, wait: bool) -> bool:
    """Run ``page`` unless it has run; False when another worker is running it and not ``wait``."""
    stored = _stored(page, docs_root)
    with stored.with_suffix(".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        try:
            if not stored.exists():
                blocks = [b for b in BLOCKS if b.page == page]
                results = run_page(blocks, stored.with_suffix(""), cohort)
                text = json.dumps([asdict(r) for r in results.values()])
                stored.write_text(text, encoding="utf-8")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return True


def page_results(page: str, docs_root: Path, cohort: TinyCohort) -> dict[int, BlockResult]:
    """The results of one page's blocks: run once per session, by whichever worker asks first.

    A worker that finds the page running elsewhere runs pages nobody has started meanwhile,
    so two workers never wait on one page while another is still to do.
    """
    if not _run_unless_busy(page, docs_root, cohort, wait=False):
        for other in dict.fromkeys(b.page for b in BLOCKS):
            if not _stored(other, docs_root).exists():
                _run_unless_busy(other, docs_root, cohort, wait=False)
        _run_unless_busy(page, docs_root, cohort, wait=True)
    stored = _stored(page, docs_root).read_text(encoding="utf-8")
    return {r["line"]: BlockResult(**r) for r in json.loads(stored)}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: DocBlock, docs_root: Path, tiny_cohort: TinyCohort) -> None:
    if block.skip:
        pytest.skip(f"{block.id}: docs-test skip: {block.skip}")
    result = page_results(block.page, docs_root, tiny_cohort)[block.line]
    if result.outcome == "skipped":
        pytest.skip(f"{block.id}: {result.error}")
    assert result.outcome == "passed", (
        f"{block.id}: the example {result.outcome}\n{result.error}\n--- its output ---\n"
        f"{result.output[-3000:]}"
    )


def test_every_python_fence_of_the_docs_is_collected() -> None:
    # A collector that missed fences would pass by running nothing; count them independently.
    fence = re.compile(r"^\s*(`{3,}|~{3,})\s*(python3?|py)\s*$", re.IGNORECASE)
    expected = [
        f"{page.relative_to(REPO).as_posix()}:{number}"
        for page in doc_pages()
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if fence.match(line)
    ]
    assert [b.id for b in BLOCKS] == expected
    assert sum(b.page == "README.md" for b in BLOCKS) >= 5


def _page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_collector_reads_blocks_their_lines_and_directives(tmp_path: Path) -> None:
    path = _page(
        tmp_path,
        "# Title\n\n```bash\nrecordagent demo\n```\n\n"
        "<!-- docs-test: tiny-store cohort.duckdb; fake-model-server -->\n"
        "<!-- docs-test: repo-file eval/suites/demo.yaml -->\n"
        "```python\nx = 1\n```\n\n"
        "- a list item:\n\n  ```py\n  y = x + 1\n  ```\n",
    )
    first, second = collect(path, repo=tmp_path)
    assert (first.id, first.code) == ("page.md:9", "x = 1\n")
    assert [(s.name, s.args) for s in first.setups] == [
        ("tiny-store", ("cohort.duckdb",)),
        ("fake-model-server", ()),
        ("repo-file", ("eval/suites/demo.yaml",)),
    ]
    assert (second.line, second.code, second.setups) == (15, "y = x + 1\n", ())


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("<!-- docs-test: skip -->", "'skip' needs a reason"),
        ("<!-- docs-test: tiny-cohort x -->", "unknown directive 'tiny-cohort'"),
        ("<!-- docs-test: tiny-store -->", "'tiny-store' takes 1 argument(s)"),
        ("<!-- docs-test: tiny-store ../outside.duckdb -->", "must stay inside"),
    ],
)
def test_collector_refuses_a_bad_directive_naming_page_and_line(
    tmp_path: Path, comment: str, message: str
) -> None:
    path = _page(tmp_path, f"text\n\n{comment}\n```python\npass\n```\n")
    with pytest.raises(DirectiveError, match=re.escape(message)) as caught:
        collect(path, repo=tmp_path)
    assert str(caught.value).startswith("page.md:3: ")


def test_collector_refuses_a_directive_that_precedes_no_python_block(tmp_path: Path) -> None:
    text = "<!-- docs-test: fake-model-server -->\nSome prose.\n```python\npass\n```\n"
    path = _page(tmp_path, text)
    with pytest.raises(DirectiveError, match="must come right before a python block"):
        collect(path, repo=tmp_path)


def test_page_runner_shares_names_reports_failures_and_stops_a_hang(
    tmp_path: Path, tiny_cohort: TinyCohort
) -> None:
    path = _page(
        tmp_path,
        "```python\nimport asyncio\nname = 'kept'\n```\n\n"
        "```python\nawait asyncio.sleep(0)\nprint(name)\n```\n\n"
        "```python\nraise ValueError('the example is wrong')\n```\n\n"
        "<!-- docs-test: skip shown as skipped -->\n```python\nraise SystemExit(3)\n```\n\n"
        "```python\nimport time\ntime.sleep(60)\n```\n\n"
        "```python\nprint('never reached')\n```\n",
    )
    blocks = collect(path, repo=tmp_path)
    results = run_page(blocks, tmp_path / "work", tiny_cohort, timeout_s=5)
    outcomes = [results[b.line].outcome for b in blocks]
    assert outcomes == ["passed", "passed", "failed", "skipped", "not-run", "not-run"]
    assert results[blocks[1].line].output == "kept\n"
    # the traceback names the page and the page's own line
    assert 'File "page.md", line 12' in results[blocks[2].line].error
    assert "ran out of its 5 s" in results[blocks[4].line].error


def test_setups_copy_the_cohort_and_point_settings_at_the_fake_server(
    tmp_path: Path, tiny_cohort: TinyCohort
) -> None:
    path = _page(
        tmp_path,
        "<!-- docs-test: tiny-store data/c.duckdb; tiny-bundle b; tiny-items i.jsonl l.csv -->\n"
        "<!-- docs-test: fake-model-server -->\n"
        "```python\nimport os\nfrom pathlib import Path\nimport recordagent as ra\n"
        "with ra.connect('data/c.duckdb') as store:\n"
        "    print(store.patient_ids())\n"
        "print(Path('b/gold/facts.parquet').is_file(), Path('i.jsonl').is_file())\n"
        "print(ra.load_settings().model.provider)\n```\n\n"
        "```python\nprint(os.environ.get('RECORDAGENT_MODEL__BASE_URL'))\n```\n",
    )
    blocks = collect(path, repo=tmp_path)
    results = run_page(blocks, tmp_path / "work", tiny_cohort)
    first, second = (results[b.line] for b in blocks)
    assert first.outcome == "passed", first.error
    assert first.output.splitlines() == [
        "['MM-001', 'MM-002', 'MM-003', 'MM-004', 'MM-005']",
        "True True",
        "openai",
    ]
    assert second.output == "None\n"  # the server's settings last one block


@pytest.mark.parametrize("page", SHELL_PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_shell_examples_name_real_commands_and_options(page: Path) -> None:
    # Shell blocks are not run (they load real data, start servers); their commands and
    # long options must exist, though.
    problems = [
        f"{where}: recordagent {' '.join(words)}: {problem}"
        for where, words in shell_commands(page)
        if (problem := command_problem(words))
    ]
    assert not problems, "\n".join(problems)


def test_shell_check_finds_commands_and_names_what_does_not_exist(tmp_path: Path) -> None:
    path = _page(
        tmp_path,
        "```bash\n. .venv/bin/activate && recordagent questions sample --n 4 \\\n"
        "    [--seed 0] | head   # a comment --bogus\n"
        "recordagent --preset small-chunks demo\n```\n",
    )
    assert shell_commands(path, repo=tmp_path) == [
        ("page.md:2", ["questions", "sample", "--n", "4", "--seed", "0"]),
        ("page.md:4", ["--preset", "small-chunks", "demo"]),
    ]
    assert command_problem(["questions", "sample", "--n", "4", "--seed", "0"]) is None
    assert command_problem(["--preset", "small-chunks", "demo"]) is None
    unknown = command_problem(["chta", "MM-001"]) or ""
    assert unknown.startswith("no command 'chta' (commands: ask, audit, chat, demo, "), unknown
    assert (command_problem(["questions", "smaple"]) or "").startswith(
        "no command 'questions smaple'"
    )
    assert command_problem(["chat", "MM-001", "--dbb", "x"]) == "'chat' has no option '--dbb'"
