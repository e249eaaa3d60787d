"""The real-model suite: one llama-server with SmolLM2-135M-Instruct for the whole session.

The server and the model come from ``tools/local_llm.py`` (``build`` and ``model``, cached per
machine). Without them every test here skips with the reason, unless
``RECORDAGENT_REQUIRE_REALMODEL=1`` (CI), where their absence fails the suite.

SmolLM2-135M is far too small to answer clinical questions: these tests pin the wire path —
requests go through, the documented statuses and failure causes come back, usage is the
server's — never the quality of an answer. Budgets are small so the suite stays within a few
minutes on two cores.

The in-process tests talk to the server through a client whose HTTP hooks record every request
body and response body (:class:`Wire`); the server's own ``timings`` in those responses and its
``/metrics`` give the throughput printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from recordagent.llm.openai_compat import OpenAICompatModel
from recordagent.questions import EvalItem
from recordagent.records.db import connect
from recordagent.records.load import load_bundle
from recordagent.runners import Answer, build_runner
from recordagent.settings import ModelSettings, Settings
from recordagent.sources.synthetic import generate_cohort, load_preset

try:  # a maintainer script beside the package, absent from an sdist of the package
    from tools.local_llm import (
        BINARY_ENV,
        MODEL_ENV,
        TOOL_TEMPLATE,
        LocalServer,
        cache_root,
        find_model,
        find_server_binary,
    )
except ImportError:  # pragma: no cover
    LocalServer = None  # type: ignore[assignment,misc]

REQUIRE_ENV = "RECORDAGENT_REQUIRE_REALMODEL"
STATUSES = {"answered", "insufficient_evidence", "truncated", "failed"}
TIMEOUT_S = 120.0
"""One model request's longest wait (a loaded 2-core machine serves ~100 prompt tokens/s)."""
RUN_TIMEOUT_S = 260.0
"""One runner's longest run, as the test bounds it (the agent's own wall budget is 200 s)."""

CTX_SIZE, PARALLEL = 16_384, 2
"""Two slots of 8,192 tokens: SmolLM2's trained context per request."""
THREADS = int(os.environ.get("RECORDAGENT_REALMODEL_THREADS", "1"))
"""One thread by default: on a busy 2-core machine (the rest of the test suite running beside
it) two threads wait on each other and run several times slower (measured: generation 47
against 8 tokens/s, 40 against 3 under a JSON grammar)."""

RUNNERS: dict[str, Any] = {
    "temperature": 0.0,
    "max_answer_tokens": 128,
    "max_step_tokens": 96,
    "single_pass_rag": {"k": 3, "context_tokens": 400},
    "iterative_rag": {"max_rounds": 2, "k_per_round": 2, "context_tokens": 500},
    "full_context": {"window_tokens": 1_500, "reserve_tokens": 500},
    "agent": {
        "max_steps": 1,
        "max_replans": 0,
        "skeleton_tokens": 200,
        "tool_result_tokens": 200,
        "max_wall_s": 200.0,
    },
}
"""Small prompts and answers: every runner's whole run is a few thousand tokens. The agent's
tool step is still ~3,000 server tokens (the five tool schemas alone are ~1,500 local ones):
about 40 s of prompt processing on a busy 2-core machine, hence its wall budget."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realmodel: needs the local llama-server and SmolLM2 (tools/local_llm.py)"
    )


# --------------------------------------------------------------------------------------------
# The server


@dataclass
class Wire:
    """Every request body the in-process clients sent, and each with the JSON body that came
    back (an error body too); a request cancelled before its answer has no exchange."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def client(self, base_url: str) -> openai.AsyncOpenAI:
        """An OpenAI client whose HTTP hooks record what goes over the wire (one event loop)."""

        async def on_request(request: Any) -> None:
            if request.method == "POST":
                with contextlib.suppress(ValueError):
                    self.sent.append(json.loads(request.content))

        async def on_response(response: Any) -> None:
            await response.aread()
            request = response.request
            if request.method != "POST":
                return
            try:
                sent, received = json.loads(request.content), response.json()
            except ValueError:
                return
            self.exchanges.append((sent, received))

        return openai.AsyncOpenAI(
            base_url=base_url,
            api_key="not-needed",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                timeout=TIMEOUT_S,
                event_hooks={"request": [on_request], "response": [on_response]},
            ),
        )

    def since(self, mark: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The exchanges recorded after ``mark`` (an earlier ``len(wire.exchanges)``)."""
        return self.exchanges[mark:]


@dataclass
class RealModel:
    """The session's server, its recorded traffic, and the settings that point at it."""

    server: LocalServer
    wire: Wire
    server_model: str

    def model_settings(self, **overrides: Any) -> ModelSettings:
        values: dict[str, Any] = {
            "provider": "openai",
            "base_url": self.server.base_url,
            "model": self.server.alias,
            "timeout_s": TIMEOUT_S,
            "max_retries": 1,
            "backoff_base_s": 0.2,
            "max_concurrency": PARALLEL,
            "context_window": self.server.slot_context,
        }
        return ModelSettings(**(values | overrides))

    def settings(self, **model_overrides: Any) -> Settings:
        return Settings(model=self.model_settings(**model_overrides), runners=RUNNERS)

    def model(self, **model_overrides: Any) -> OpenAICompatModel:
        """A client of the server recording its traffic; build one per event loop."""
        return OpenAICompatModel(
            self.model_settings(**model_overrides), client=self.wire.client(self.server.base_url)
        )

    def env(self) -> dict[str, str]:
        """The environment of a ``recordagent`` child process using the server."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RECORDAGENT_")}
        return {
            **inherited,
            **self.server.env(TIMEOUT_S),
            **_runner_env(RUNNERS),
            "RECORDAGENT_MODEL__MAX_RETRIES": "1",
            "COLUMNS": "120",
            "NO_COLOR": "1",
        }


def _runner_env(values: dict[str, Any], prefix: str = "RECORDAGENT_RUNNERS") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        key = f"{prefix}__{name.upper()}"
        if isinstance(value, dict):
            out |= _runner_env(value, key)
        else:
            out[key] = str(value)
    return out


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the real-model suite must run)", pytrace=False)
    pytest.skip(reason)


_FIGURES: dict[str, Any] = {}
"""What the session measured, printed at its end (see pytest_terminal_summary)."""


@pytest.fixture(scope="session")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealModel]:
    if LocalServer is None:
        _unavailable("tools/local_llm.py is not here (the real-model suite needs a checkout)")
    binary, gguf = find_server_binary(), find_model()
    for variable, found in ((BINARY_ENV, binary), (MODEL_ENV, gguf)):
        if found is None and os.environ.get(variable):
            _unavailable(f"{variable}={os.environ[variable]} names no usable file")
    if binary is None:
        _unavailable(
            f"no llama-server built for this CPU under {cache_root()}: run "
            "`python tools/local_llm.py build` (about 5-10 minutes, once per machine)"
        )
    if gguf is None:
        _unavailable(f"no SmolLM2 GGUF under {cache_root()}: run `python tools/local_llm.py model`")
    assert binary is not None and gguf is not None
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    server = LocalServer(
        binary,
        gguf,
        ctx_size=CTX_SIZE,
        parallel=PARALLEL,
        jinja=True,
        chat_template=TOOL_TEMPLATE,
        threads=THREADS,
        log_path=log,
    )
    clock = time.perf_counter()
    with server:
        _FIGURES["startup_s"] = time.perf_counter() - clock
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as response:
            listed = json.load(response)
        wire = Wire()
        yield RealModel(server=server, wire=wire, server_model=listed["data"][0]["id"])
        _FIGURES["timings"] = [received.get("timings") for _, received in wire.exchanges]
        try:
            _FIGURES["metrics"] = server.metrics()
        except Exception as exc:  # the figures are a report, not a test
            _FIGURES["metrics_error"] = repr(exc)


def record_figure(name: str, value: Any) -> None:
    """Keep a measured figure for the end-of-session summary."""
    _FIGURES[name] = value


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("real model (llama-server, SmolLM2-135M-Instruct Q4_1)")
    if "startup_s" in _FIGURES:
        write(f"server ready in {_FIGURES['startup_s']:.1f} s")
    timings = [t for t in _FIGURES.get("timings", []) if t]
    if timings:
        prompt_n = sum(t["prompt_n"] for t in timings)
        prompt_ms = sum(t["prompt_ms"] for t in timings)
        predicted_n = sum(t["predicted_n"] for t in timings)
        predicted_ms = sum(t["predicted_ms"] for t in timings)
        cached = sum(t.get("cache_n", 0) for t in timings)
        write(
            f"{len(timings)} in-process requests: prompt {prompt_n} tokens evaluated "
            f"({cached} more reused from the slot cache) at "
            f"{1000 * prompt_n / max(prompt_ms, 1e-9):.0f} tokens/s; generation {predicted_n} "
            f"tokens at {1000 * predicted_n / max(predicted_ms, 1e-9):.1f} tokens/s"
        )
    metrics = _FIGURES.get("metrics") or {}
    if metrics:
        write(
            "server /metrics over the whole session (subprocesses included): "
            f"{metrics.get('prompt_tokens_total', 0):.0f} prompt tokens at "
            f"{metrics.get('prompt_tokens_seconds', 0):.0f} tokens/s, "
            f"{metrics.get('tokens_predicted_total', 0):.0f} generated at "
            f"{metrics.get('predicted_tokens_seconds', 0):.1f} tokens/s"
        )
    for key in ("usage_ratio", "runner_walls"):
        if key in _FIGURES:
            write(f"{key}: {_FIGURES[key]}")


# --------------------------------------------------------------------------------------------
# The records


@dataclass(frozen=True)
class TinyStudy:
    """The tiny synthetic cohort in a store file, with three sampled items and their labels."""

    cohort: Path
    db: Path
    items: Path
    labels: Path

    def items_list(self) -> list[EvalItem]:
        return [
            EvalItem.model_validate_json(line)
            for line in self.items.read_text().splitlines()
            if line.strip()
        ]


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> TinyStudy:
    root = tmp_path_factory.mktemp("realmodel_study")
    cohort, db = root / "tiny", root / "store.duckdb"
    generate_cohort(load_preset("tiny"), 0, cohort)
    with connect(db) as store:
        load_bundle(store, cohort, settings=Settings(), source="tiny")
    items, labels = root / "items.jsonl", root / "labels.csv"
    sampled = subprocess.run(
        [sys.executable, "-m", "recordagent", "questions", "sample", "--cohort", str(cohort),
         "--n", "3", "--seed", "0", "--out", str(items), "--labels", str(labels)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    return TinyStudy(cohort=cohort, db=db, items=items, labels=labels)


# --------------------------------------------------------------------------------------------
# Runner answers, made once per session and shared by the tests that look at them


@dataclass
class RunResult:
    """One runner's answer to one item through the real server, with what went over the wire."""

    answer: Answer
    sent: list[dict[str, Any]]
    exchanges: list[tuple[dict[str, Any], dict[str, Any]]]
    wall_s: float


class Answers:
    """Runs a runner over the study's first item on demand; each (runner, variant) once."""

    def __init__(self, real_model: RealModel, study: TinyStudy) -> None:
        self.real_model = real_model
        self.study = study
        self.item = study.items_list()[0]
        self._done: dict[tuple[str, str], RunResult] = {}

    def get(self, runner: str, variant: str = "native", **model_overrides: Any) -> RunResult:
        key = (runner, variant)
        if key not in self._done:
            self._done[key] = self._run(runner, model_overrides)
            walls = _FIGURES.setdefault("runner_walls", {})
            done = self._done[key]
            walls[f"{runner}/{variant}"] = (
                f"{done.wall_s:.1f} s {done.answer.status}"
                + (f" ({done.answer.failure})" if done.answer.failure else "")
                + f" {len(done.sent)} request(s), {len(done.exchanges)} answered"
            )
        return self._done[key]

    def _run(self, name: str, model_overrides: dict[str, Any]) -> RunResult:
        settings = self.real_model.settings(**model_overrides)
        wire = self.real_model.wire
        sent_mark, mark = len(wire.sent), len(wire.exchanges)

        async def run() -> Answer:
            model = self.real_model.model(**model_overrides)
            try:
                with connect(self.study.db, read_only=True) as store:
                    scope = store.scope(self.item.patient_id)
                    runner = build_runner(name, settings)
                    return await asyncio.wait_for(
                        runner.run(self.item, scope, model), RUN_TIMEOUT_S
                    )
            finally:
                await model.close()

        clock = time.perf_counter()
        answer = asyncio.run(run())
        return RunResult(
            answer, wire.sent[sent_mark:], wire.since(mark), time.perf_counter() - clock
        )


@pytest.fixture(scope="session")
def answers(real_model: RealModel, tiny_study: TinyStudy) -> Answers:
    return Answers(real_model, tiny_study)
