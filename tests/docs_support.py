"""Running the documentation's Python blocks: collection, setup directives, a page runner.

Every fenced ``python`` block of README.md, docs/**/*.md and question_templates/**/README.md is
an example that must run. The blocks of one page run in order, in one namespace (a later block
may use the names an earlier one made, as a reader reading the page would), in a fresh
temporary working directory, in a child process with a timeout. A block may use top-level
``await``, as in a notebook.

A block says what it needs with HTML comments right before its fence (invisible when
rendered); directives are separated by ``;``, and several comments may stack::

    <!-- docs-test: tiny-store cohort.duckdb; fake-model-server -->

The vocabulary (paths are relative to the page's working directory):

``tiny-bundle PATH``
    The tiny synthetic cohort (``synth --preset tiny --seed 0``: patients MM-001 … MM-005,
    with its ``gold/`` tables) as a bundle folder at PATH.
``tiny-store PATH``
    That cohort loaded into a record store file at PATH.
``tiny-items ITEMS LABELS``
    Items sampled from that cohort's templates (8, seed 0) at ITEMS (JSONL) and their gold
    labels at LABELS (CSV), as ``recordagent questions sample`` writes them.
``mimic-demo-store PATH``
    The open MIMIC-IV demo (``../shared/data/mimic-iv-demo``, 100 patients) loaded into a
    store at PATH; the block is skipped, with that reason, where the data is absent.
``repo-file PATH``
    The repository's file PATH copied to the same relative path (e.g. an eval suite).
``shared-data SOURCE PATH``
    The real data folder ``../shared/data/SOURCE`` (e.g. ``synthea-fhir-ny/fhir``) linked at
    PATH, read-only, as an export a team would have; the block is skipped, with that reason,
    where the data is absent.
``fake-model-server``
    While this block runs, ``RECORDAGENT_MODEL__PROVIDER=openai``,
    ``RECORDAGENT_MODEL__BASE_URL`` (a loopback fake OpenAI-compatible server,
    tests/fake_openai.py, answering "ok") and ``RECORDAGENT_MODEL__MODEL=fake`` are set, so
    ``load_settings()`` points the block at it. The block's text is never rewritten.
``skip REASON``
    Do not run this block; the reason is required and shows in the test report. A rare
    exception: an example that cannot run here should be made into one that can.

Files a setup writes stay for the rest of the page; environment variables last one block. The
developer's own ``RECORDAGENT_*`` variables are cleared, so every page sees the defaults.

Shell blocks (``bash``, ``sh``, ``console`` or unlabelled) are not run; each ``recordagent …``
command in them must name an existing command and existing long options
(:func:`shell_commands`, :func:`command_problem`).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

PAGE_TIMEOUT_S = 120.0
"""A page's whole run: its blocks together must finish within this (nothing may hang)."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
SETUPS = (
    "tiny-bundle",
    "tiny-store",
    "tiny-items",
    "mimic-demo-store",
    "repo-file",
    "shared-data",
    "fake-model-server",
)
_ARITY = {
    "tiny-bundle": 1,
    "tiny-store": 1,
    "tiny-items": 2,
    "mimic-demo-store": 1,
    "repo-file": 1,
    "shared-data": 2,
}
SHARED_DATA = REPO.parent / "shared" / "data"
MIMIC_DEMO = SHARED_DATA / "mimic-iv-demo"


class _Unavailable(Exception):
    """A setup's real data is absent here: the block is skipped, saying why."""


class DirectiveError(ValueError):
    """A ``docs-test`` comment that does not parse (page and line named)."""


@dataclass(frozen=True)
class Setup:
    """One setup directive: its name and arguments."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocBlock:
    """One ``python`` block of a page: where it starts, its code and what it needs."""

    page: str  # relative to the repository, e.g. "docs/models.md"
    line: int  # 1-based line of the opening fence
    code: str
    setups: tuple[Setup, ...] = ()
    skip: str | None = None

    @property
    def id(self) -> str:
        """The test id, ``page:line``."""
        return f"{self.page}:{self.line}"


@dataclass
class BlockResult:
    """What running one block gave."""

    line: int
    outcome: str  # passed, failed, skipped, not-run
    output: str = ""
    error: str = ""
    seconds: float = 0.0


def doc_pages(repo: Path = REPO) -> list[Path]:
    """The Markdown pages whose examples must run."""
    pages = [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]
    pages += sorted((repo / "question_templates").rglob("README.md"))
    return [p for p in pages if p.is_file()]


def collect(path: Path, repo: Path = REPO) -> list[DocBlock]:
    """The ``python`` blocks of one page, with their directives.

    Raises:
        DirectiveError: A directive that does not parse, or a fence that is never closed.
    """
    return [
        DocBlock(b.page, b.line, b.code, b.setups, b.skip)
        for b in _fenced(path, repo)
        if b.language in PYTHON
    ]


def shell_commands(path: Path, repo: Path = REPO) -> list[tuple[str, list[str]]]:
    """Each ``recordagent …`` command of the page's shell blocks: ``(page:line, words)``.

    Continuation lines are joined, comments dropped, ``&&``/``;``/``|`` split commands; the
    words are those after ``recordagent``, with the ``[`` ``]`` of optional parts removed.
    """
    found: list[tuple[str, list[str]]] = []
    for block in _fenced(path, repo):
        if block.language not in SHELL:
            continue
        lines = block.code.splitlines()
        number = 0
        while number < len(lines):
            first, text = number, lines[number]
            while text.rstrip().endswith("\\") and number + 1 < len(lines):
                number += 1
                text = text.rstrip()[:-1] + " " + lines[number]
            number += 1
            text = text.removeprefix("$ ")
            try:
                words = shlex.split(text, comments=True)
            except ValueError:
                continue  # not shell syntax (an ellipsis, a prompt's output)
            command: list[str] | None = None
            for word in [*words, ";"]:
                if word in {"&&", "||", ";", "|"} or word.endswith(";"):
                    if command is not None:
                        found.append((f"{block.page}:{block.line + 1 + first}", command))
                    command = None
                elif command is not None:
                    command += [w for w in (word.strip("[]"),) if w]
                elif word == "recordagent":
                    command = []
    return found


def command_problem(words: list[str]) -> str | None:
    """What is wrong with ``recordagent WORDS`` (an unknown command or option), or None."""
    import typer

    from recordagent.cli.main import app

    chosen: Any = typer.main.get_command(app)
    context: list[str] = []
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word.startswith("-"):
            problem = _option_problem(chosen, word, context)
            if problem:
                return problem
            if _takes_value(chosen, word) and rest:
                rest.pop(0)
            continue
        if hasattr(chosen, "commands"):  # a group (typer vendors its own click)
            if word not in chosen.commands:
                known = ", ".join(sorted(chosen.commands))
                return f"no command {' '.join([*context, word])!r} (commands: {known})"
            chosen = chosen.commands[word]
            context.append(word)
    return None


def _takes_value(command: Any, word: str) -> bool:
    if "=" in word:
        return False
    for param in command.params:
        if word in (*param.opts, *param.secondary_opts):
            return not (getattr(param, "is_flag", False) or getattr(param, "count", False))
    return False


def _option_problem(command: Any, word: str, context: list[str]) -> str | None:
    name = word.split("=", 1)[0]
    if name in {"--help", "…", "..."} or not name.startswith("--"):
        return None  # short flags and placeholders are left alone
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    if name not in options:
        where = " ".join(context) or "recordagent"
        return f"{where!r} has no option {name!r}"
    return None


PYTHON = frozenset({"python", "py", "python3"})
SHELL = frozenset({"bash", "sh", "shell", "console", ""})  # unlabelled: often commands


@dataclass(frozen=True)
class _Fenced:
    page: str
    line: int
    language: str
    code: str
    setups: tuple[Setup, ...]
    skip: str | None


def _fenced(path: Path, repo: Path) -> list[_Fenced]:
    page = path.relative_to(repo).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[_Fenced] = []
    pending: list[tuple[int, str]] = []  # directive comments seen since the last content
    i = 0
    while i < len(lines):
        text = lines[i]
        directive = _DIRECTIVE.match(text)
        if directive:
            pending.append((i + 1, directive["body"]))
            i += 1
            continue
        fence = _FENCE.match(text)
        if not fence:
            if text.strip():
                _orphans(page, pending)
            i += 1
            continue
        start, indent, marker = i, fence["indent"], fence["fence"]
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], marker):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise DirectiveError(f"{page}:{start + 1}: a code fence that is never closed")
        i += 1
        language = fence["info"].lower()
        if language in PYTHON:
            setups, skip = _directives(page, pending)
        else:
            _orphans(page, pending)
            setups, skip = (), None
        blocks.append(_Fenced(page, start + 1, language, "\n".join(body) + "\n", setups, skip))
        pending = []
    _orphans(page, pending)
    return blocks


def _closes(text: str, marker: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(marker[0] * len(marker)) and set(stripped) == {marker[0]}


def _orphans(page: str, pending: list[tuple[int, str]]) -> None:
    if pending:
        line = pending[0][0]
        raise DirectiveError(
            f"{page}:{line}: a docs-test comment must come right before a python block"
        )


def _directives(page: str, pending: list[tuple[int, str]]) -> tuple[tuple[Setup, ...], str | None]:
    setups: list[Setup] = []
    skip: str | None = None
    for line, body in pending:
        for part in (p.strip() for p in body.split(";")):
            if not part:
                continue
            name, _, rest = part.partition(" ")
            if name == "skip":
                if not rest.strip():
                    raise DirectiveError(f"{page}:{line}: 'skip' needs a reason")
                skip = rest.strip()
                continue
            if name not in SETUPS:
                known = ", ".join((*SETUPS, "skip"))
                raise DirectiveError(f"{page}:{line}: unknown directive {name!r}; known: {known}")
            args = tuple(shlex.split(rest))
            if len(args) != _ARITY.get(name, 0):
                raise DirectiveError(
                    f"{page}:{line}: {name!r} takes {_ARITY.get(name, 0)} argument(s), got {args}"
                )
            for arg in args:
                if Path(arg).is_absolute() or ".." in Path(arg).parts:
                    raise DirectiveError(
                        f"{page}:{line}: {arg!r} must stay inside the page's folder"
                    )
            setups.append(Setup(name, args))
    return tuple(setups), skip


# ---------------------------------------------------------------------------------------------
# The tiny cohort the setups copy from (built once per test session by the caller)


@dataclass(frozen=True)
class TinyCohort:
    """The tiny synthetic cohort's bundle, store and a sampled study, ready to copy."""

    bundle: Path
    store: Path
    items: Path
    labels: Path

    @classmethod
    def under(cls, root: Path) -> TinyCohort:
        """Where :func:`build_tiny_cohort` puts them under ``root``."""
        return cls(root / "tiny", root / "tiny.duckdb", root / "items.jsonl", root / "labels.csv")


def build_tiny_cohort(root: Path) -> TinyCohort:
    """Generate the tiny cohort (seed 0) under ``root``, load it, sample 8 items with labels."""
    from recordagent.evaluation import gold_labels
    from recordagent.evaluation.labels import write_labels
    from recordagent.questions import write_items
    from recordagent.questions.sampling import instantiate, sample
    from recordagent.questions.templates import load_templates
    from recordagent.records import load_bundle, open_for_load
    from recordagent.resources import question_templates_path
    from recordagent.settings import Settings
    from recordagent.sources.synthetic import generate_cohort, load_preset

    cohort = TinyCohort.under(root)
    generate_cohort(load_preset("tiny"), 0, cohort.bundle)
    settings = Settings()
    with open_for_load(cohort.store, settings=settings.store) as store:
        load_bundle(store, cohort.bundle, settings=settings, source="tiny")
    templates = load_templates(question_templates_path() / "myeloma")
    study = sample(instantiate(templates, cohort.bundle / "gold"), n=8, seed=0)
    write_items(cohort.items, study)
    write_labels(gold_labels(study, cohort.bundle / "gold", templates), cohort.labels)
    return cohort


# ---------------------------------------------------------------------------------------------
# Running a page: the parent side


def run_page(
    blocks: list[DocBlock], workdir: Path, cohort: TinyCohort, timeout_s: float = PAGE_TIMEOUT_S
) -> dict[int, BlockResult]:
    """Run a page's blocks in order in a child process in ``workdir``; a result per block line.

    Blocks the child did not reach (it crashed or ran out of time) are 'not-run', with why.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir.parent / f"{workdir.name}.spec.json"
    results_path = workdir.parent / f"{workdir.name}.results.jsonl"
    spec.write_text(
        json.dumps(
            {
                "blocks": [{**asdict(b), "setups": [asdict(s) for s in b.setups]} for b in blocks],
                "cohort": {k: str(v) for k, v in asdict(cohort).items()},
                "repo": str(REPO),
            }
        ),
        encoding="utf-8",
    )
    results_path.write_text("", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    for name in [n for n in env if n.startswith("RECORDAGENT_")]:
        del env[name]  # a developer's own model settings must not change what the docs do
    why = ""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "tests.docs_support", str(spec), str(results_path)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if child.returncode != 0:
            why = f"the page's process exited {child.returncode}:\n{child.stderr[-4000:]}"
    except subprocess.TimeoutExpired:
        why = f"the page ran out of its {timeout_s:g} s (a block hangs or is too slow)"
    results: dict[int, BlockResult] = {}
    for text in results_path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut short by the kill
            result = BlockResult(**json.loads(text))
            results[result.line] = result
    for block in blocks:
        results.setdefault(block.line, BlockResult(block.line, "not-run", error=why))
    return results


# ---------------------------------------------------------------------------------------------
# Running a page: the child side


@dataclass
class _Page:
    cohort: TinyCohort
    repo: Path
    server: Any = None
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__main__"})

    def server_url(self) -> str:
        if self.server is None:
            sys.path.insert(0, str(self.repo))
            from tests.fake_openai import FakeOpenAI

            self.server = FakeOpenAI().__enter__()
        return str(self.server.url)


def _setup(page: _Page, setup: Setup) -> dict[str, str]:
    """Do one setup in the working directory; the environment variables it asks for."""
    if setup.name == "shared-data":
        return _link_shared_data(*setup.args)
    targets = [Path(a) for a in setup.args]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    copies: dict[str, Callable[[], object]] = {
        "tiny-bundle": lambda: shutil.copytree(page.cohort.bundle, targets[0]),
        "tiny-store": lambda: shutil.copyfile(page.cohort.store, targets[0]),
        "tiny-items": lambda: (
            shutil.copyfile(page.cohort.items, targets[0]),
            shutil.copyfile(page.cohort.labels, targets[1]),
        ),
        "repo-file": lambda: shutil.copyfile(page.repo / targets[0], targets[0]),
        "mimic-demo-store": lambda: _load_mimic_demo(targets[0]),
    }
    if setup.name in copies:
        if not any(t.exists() for t in targets):  # made by an earlier block's setup: keep it
            copies[setup.name]()
        return {}
    return {
        "RECORDAGENT_MODEL__PROVIDER": "openai",
        "RECORDAGENT_MODEL__BASE_URL": page.server_url(),
        "RECORDAGENT_MODEL__MODEL": "fake",
    }


def _link_shared_data(source: str, path: str) -> dict[str, str]:
    folder = SHARED_DATA / source
    if not folder.exists():
        raise _Unavailable(f"the real data {source} is not at {folder}")
    target = Path(path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(folder.resolve(), target_is_directory=folder.is_dir())
    return {}


def _load_mimic_demo(target: Path) -> None:
    if not (MIMIC_DEMO / "hosp").is_dir():
        raise _Unavailable(f"the MIMIC-IV demo is not at {MIMIC_DEMO}")
    from recordagent.records import open_for_load
    from recordagent.sources.mimic_iv import load_mimic_iv

    with open_for_load(target) as store:
        load_mimic_iv(store, MIMIC_DEMO)


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_block(page: _Page, block: DocBlock) -> BlockResult:
    if block.skip:
        return BlockResult(block.line, "skipped", error=block.skip)
    started = time.perf_counter()
    output = io.StringIO()
    try:
        variables: dict[str, str] = {}
        for setup in block.setups:
            variables |= _setup(page, setup)
        # Line numbers in a traceback are the page's own: the code starts after the fence.
        source = "\n" * block.line + block.code
        code = compile(source, block.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        with (
            _environment(variables),
            contextlib.redirect_stdout(output),
            contextlib.redirect_stderr(output),
        ):
            result = eval(code, page.namespace)  # noqa: S307 - the docs' own examples
            if asyncio.iscoroutine(result):
                asyncio.run(result)
    except _Unavailable as absent:
        return BlockResult(block.line, "skipped", error=str(absent))
    except BaseException:  # noqa: BLE001 - every failure is the block's result
        return BlockResult(
            block.line,
            "failed",
            output.getvalue(),
            traceback.format_exc(),
            time.perf_counter() - started,
        )
    return BlockResult(block.line, "passed", output.getvalue(), "", time.perf_counter() - started)


def _child(spec_path: Path, results_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    cohort = TinyCohort(**{k: Path(v) for k, v in spec["cohort"].items()})
    page = _Page(cohort, Path(spec["repo"]))
    try:
        with results_path.open("a", encoding="utf-8") as results:
            for raw in spec["blocks"]:
                setups = tuple(Setup(s["name"], tuple(s["args"])) for s in raw.pop("setups"))
                block = DocBlock(**raw, setups=setups)
                results.write(json.dumps(asdict(_run_block(page, block))) + "\n")
                results.flush()  # a later block that hangs must not lose this one's result
    finally:
        if page.server is not None:
            page.server.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), Path(sys.argv[2])))
