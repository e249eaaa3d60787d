"""A ChatModel for any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama, llama.cpp, LiteLLM).

Built on the ``openai`` SDK's async client with the SDK's own retries switched off: retries
here back off exponentially with full jitter, honour ``Retry-After``, and count against one
budget per call. A semaphore shared by every call of a run caps requests in flight. Tool calls
whose arguments are not JSON, or that name an unknown tool, come back as ToolCalls carrying a
corrective error instead of raising. Structured output uses ``response_format`` (JSON schema)
where the server supports it, and otherwise the schema in the prompt; either way the answer is
validated, and one repair is asked for when it does not validate.

What real servers do to a request is handled where it happens, once per model:

* a request that runs out of ``timeout_s`` is not resent (the server would start the same
  generation again) unless ``retry_timeouts``; connection faults are retried;
* an answer cut off at ``max_tokens`` fails with cause 'output_length' instead of being
  repaired (the repair would be cut off too);
* consecutive messages of one role are merged, and system messages folded into the first user
  message where a chat template refuses them;
* tools that the server refuses, or silently drops (its prompt count shows no tools), go into
  the prompt instead, with a warning;
* the context window is asked of the server (llama.cpp, vLLM) when not set, and a prompt that
  cannot fit is refused before it is sent;
* every ModelError carries what the call spent (usage, HTTP requests) in its ``completion``;
* an endpoint's requests and tokens per minute budget paces every HTTP attempt, and a
  Retry-After pauses every caller that shares the budget (``llm.rate_limit``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import logging
import os
import random
import re
import time
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from recordagent.errors import ModelError, ModelFailure, StructuredOutputError
from recordagent.llm import rate_limit
from recordagent.llm.client import (
    json_schema,
    merged_roles,
    parse_structured,
    parse_text_tool_calls,
    parse_tool_calls,
    schema_instruction,
    tools_instruction,
    without_tool_roles,
)
from recordagent.llm.pricing import PriceTable, load_prices
from recordagent.llm.rate_limit import RateLimiter
from recordagent.llm.tokens import count_request_tokens, tools_tokens
from recordagent.llm.types import Completion, Message, Usage
from recordagent.records.tokens import Tokenizer
from recordagent.settings import ModelSettings

__all__ = ["OpenAICompatModel"]

log = logging.getLogger(__name__)

_PARAMS = {"temperature", "max_tokens", "seed", "reasoning_effort", "top_p", "stop"}

# How servers word what they refuse (llama.cpp, vLLM, OpenAI, Ollama, Jinja chat templates).
_OVERFLOW = re.compile(
    r"context (size|length|window)|maximum context|context_length_exceeded|"
    r"exceed_context_size|too many tokens|prompt is too long",
    re.IGNORECASE,
)
_SYSTEM_REFUSED = re.compile(
    r"system (role|message)s? (is |are )?not supported|roles must alternate|"
    r"conversation roles must|only user and assistant roles",
    re.IGNORECASE,
)
_TOOLS_REFUSED = re.compile(
    r"tools? param(eter)? requires|--jinja|does not support tools|tools? (is |are )?not "
    r"supported|tool.?choice.*not supported|auto.?tool.?choice",
    re.IGNORECASE,
)
# A request timeout, and gateways (nginx, Cloudflare) that stopped waiting for the server.
_GATEWAY_TIMEOUTS = frozenset({408, 504, 524})
# A refusal of the window check is only certain when the local count is this far over.
_SURE_OVERFLOW = 1.1
# Tools count as present in a reported prompt when at least this share of their tokens shows.
_TOOLS_SEEN = 0.5
# A request's tokens are estimated from its bytes for the rate limit: counting them costs
# milliseconds per call on long prompts, measuring bytes microseconds. Clinical prose runs about
# 4 bytes a token in cl100k, lab tables 3: a slight overestimate, corrected once the server
# reports the usage.
_BYTES_PER_TOKEN = 3
# The statuses whose Retry-After pauses every caller of the budget, not only the one told.
_PAUSING = frozenset({429, 503})


class _EmptyChoices(Exception):
    """The server answered 200 without a choice: treated like a transient server fault."""


class _ToolsRefused(Exception):
    """The server refuses tool definitions: the call is made again with tools in the prompt."""


class _SystemRefused(Exception):
    """The chat template refuses system messages: the call is made again with them folded."""


class _Spend:
    """What one ``complete`` call spent so far: usage and HTTP requests, retries included."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.usage = Usage()
        self.attempts = 0

    def onto(self, completion: Completion) -> Completion:
        """``completion`` carrying the whole call's usage, latency and request count."""
        return completion.model_copy(
            update={
                "usage": self.usage,
                "latency_s": round(time.perf_counter() - self.started, 6),
                "attempts": self.attempts,
            }
        )

    def failed(self, model: str) -> Completion:
        """An empty completion carrying what a failed call spent."""
        return self.onto(Completion(message=Message(role="assistant"), model=model))


class OpenAICompatModel:
    """Chat completions from an OpenAI-compatible endpoint.

    Args:
        settings: Endpoint, model, timeouts, retry budget and concurrency.
        client: An ``openai.AsyncOpenAI`` to use instead of building one (tests, proxies).
        limiter: A semaphore shared with other models of the run; one of
            ``settings.max_concurrency`` slots is made when omitted.
        prices: Price table; the packaged one (or ``settings.price_file``) when omitted.
        tokenizer: Counts tokens when the server reports no usage, and for the window check.
        rate_limiter: The endpoint's requests and tokens per minute budget, shared with every
            other caller of it (another model of the run, the tasks of a Ray cluster). When
            omitted, one for this model alone is made from ``settings`` (none when neither
            ``requests_per_minute`` nor ``tokens_per_minute`` is set).
    """

    def __init__(
        self,
        settings: ModelSettings,
        *,
        client: openai.AsyncOpenAI | None = None,
        limiter: asyncio.Semaphore | None = None,
        prices: PriceTable | None = None,
        tokenizer: Tokenizer | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.rate_limiter = (
            rate_limiter if rate_limiter is not None else rate_limit.rate_limiter(settings)
        )
        # Our retries only: an injected client keeps its options but loses the SDK's retries.
        self._given_client = client.with_options(max_retries=0) if client is not None else None
        self._given_limiter = limiter
        # The HTTP pool and the semaphore belong to one event loop; a model used from another
        # loop (a second asyncio.run) gets its own.
        self._per_loop: dict[int, tuple[openai.AsyncOpenAI, asyncio.Semaphore]] = {}
        self._prices = prices or load_prices(settings.price_file)
        self._tokenizer = tokenizer
        self._random = random.Random()
        # What this server turned out to accept, learnt once and kept for every later call.
        self.prompt_tools = not settings.supports_tools
        self.fold_system = settings.system_role == "fold"
        # OpenAI and Azure neither list windows nor drop tools; self-hosted servers may.
        hosted = (
            settings.provider == "azure"
            or settings.base_url is None
            or "api.openai.com" in settings.base_url
        )
        self._window: int | None = settings.context_window
        self._window_asked = settings.context_window is not None or hosted
        self._window_task: asyncio.Future[int | None] | None = None
        self._tools_seen = hosted

    @property
    def name(self) -> str:
        """The model name."""
        return self.settings.model

    @property
    def is_mock(self) -> bool:
        """Never: this talks to a real endpoint."""
        return False

    @property
    def tokenizer(self) -> Tokenizer:
        """The local tokenizer (made when first needed)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.settings.encoding)
        return self._tokenizer

    async def context_window(self) -> int | None:
        """The model's context window in its own tokens.

        ``settings.context_window`` when set; otherwise asked of the server once: llama.cpp
        and vLLM list it with the model (``/v1/models``: ``meta.n_ctx`` per slot,
        ``max_model_len``), llama.cpp also in ``/props``. None where the server does not say.
        """
        if not self._window_asked:
            # Calls starting together share one question to the server.
            task = self._window_task
            if task is None or task.get_loop() is not asyncio.get_running_loop():
                task = self._window_task = asyncio.ensure_future(self._asked_window())
            window = await asyncio.shield(task)
            if not self._window_asked:
                self._window, self._window_asked = window, True
                if window is not None:
                    log.info("%s: the server's context window is %d tokens", self.name, window)
        return self._window

    async def _asked_window(self) -> int | None:
        client, _ = self._resources()
        probe = client.with_options(timeout=min(10.0, self.settings.timeout_s))
        # llama.cpp's /props has the window per slot; vLLM lists max_model_len with the model.
        window = _props_window(await _get_json(probe, _server_root(client) + "/props"))
        if window is None:
            window = _listed_window(await _get_json(probe, "/models"), self.name)
        return window

    async def close(self) -> None:
        """Close the HTTP connections this model opened for the running event loop.

        A client given to the constructor is the caller's to close: it is left open.
        """
        entry = self._per_loop.pop(id(asyncio.get_running_loop()), None)
        if entry is not None and entry[0] is not self._given_client:
            await entry[0].close()

    async def __aenter__(self) -> OpenAICompatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _resources(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        key = id(asyncio.get_running_loop())
        if key not in self._per_loop:
            client = self._given_client or _build_client(self.settings)
            limiter = self._given_limiter or asyncio.Semaphore(self.settings.max_concurrency)
            self._per_loop = {key: (client, limiter)}  # an old loop's pool is unusable anyway
        return self._per_loop[key]

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        response_format: type[BaseModel] | None = None,
        **params: Any,
    ) -> Completion:
        """One completion, retried on transient faults, validated against ``response_format``.

        Raises:
            ModelError: The retry budget ran out, the server refused the request (4xx), the
                prompt does not fit the context window, the answer was cut off at
                ``max_tokens``, or it did not validate even after one repair. ``cause`` says
                which; ``completion`` carries what the call spent.
            ValueError: An unknown parameter name.
        """
        unknown = set(params) - _PARAMS
        if unknown:
            raise ValueError(f"unknown completion parameter(s): {', '.join(sorted(unknown))}")
        spend = _Spend()
        try:
            return await self._complete(list(messages), tools, response_format, params, spend)
        except ModelError as exc:
            if exc.completion is None:
                exc.completion = spend.failed(self.name)
            raise

    async def _complete(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]] | None,
        response_format: type[BaseModel] | None,
        params: dict[str, Any],
        spend: _Spend,
    ) -> Completion:
        completion, request, text_tools = await self._first_answer(
            messages, tools, response_format, params, spend
        )
        if completion.finish_reason == "length" and (response_format or text_tools):
            raise self._cut_off(completion, params, spend)

        async def repair(answer: Completion, instruction: str) -> Completion:
            # One repair: the model sees its answer and what was wrong with it.
            retry = [*request, answer.message, Message(role="user", content=instruction)]
            fixed = await self._call(
                merged_roles(retry, fold_system=self.fold_system),
                None,
                response_format,
                params,
                spend,
            )
            if fixed.finish_reason == "length":
                raise self._cut_off(fixed, params, spend)
            return fixed

        if text_tools:
            assert tools is not None
            calls, problem = parse_text_tool_calls(completion.text, tools)
            if problem:
                completion = await repair(completion, f"{problem}. Resend the JSON object only.")
                calls, problem = parse_text_tool_calls(completion.text, tools)
                if problem:
                    raise ModelError(
                        f"{self.name}: the tool call written as text is still invalid after "
                        f"one repair: {problem}",
                        cause="invalid_output",
                        completion=spend.onto(completion),
                    )
            if calls:
                completion = completion.model_copy(
                    update={
                        "message": Message(role="assistant", content=None, tool_calls=calls),
                        "finish_reason": "tool_calls",
                    }
                )
        if response_format is not None and not completion.tool_calls:
            parsed, problem = parse_structured(completion.text, response_format)
            if parsed is None:
                completion = await repair(
                    completion,
                    "That answer does not validate against the schema: "
                    f"{problem[:1500]}\nReply with the corrected JSON object only.",
                )
                parsed, problem = parse_structured(completion.text, response_format)
                if parsed is None:
                    raise StructuredOutputError(
                        f"{self.name}: the structured answer did not validate after one repair: "
                        f"{problem[:500]}",
                        spend.onto(completion),
                    )
            completion = completion.model_copy(update={"parsed": parsed})
        return spend.onto(completion)

    async def _first_answer(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]] | None,
        response_format: type[BaseModel] | None,
        params: dict[str, Any],
        spend: _Spend,
    ) -> tuple[Completion, list[Message], bool]:
        """The first reply, the request it answered, and whether tools went in the prompt.

        Tools the server refuses or drops are sent again in the prompt.
        """
        while True:
            text_tools = bool(tools) and self.prompt_tools
            request = self._request(messages, tools if text_tools else None, response_format)
            await self._check_window(request, None if text_tools else tools, params)
            try:
                completion = await self._call(
                    request, None if text_tools else tools, response_format, params, spend
                )
            except _ToolsRefused as refusal:
                self._tools_into_prompt(f"the server refused them ({refusal})")
                continue
            if not text_tools and tools and not self._tools_seen:
                if completion.tool_calls:
                    self._tools_seen = True
                elif await self._tools_dropped(request, tools, completion, params, spend):
                    self._tools_into_prompt("the server answered without reading them")
                    continue
                elif completion.usage.reported:
                    self._tools_seen = True  # a server that shows tools once always does
            return completion, request, text_tools

    def _request(
        self,
        messages: list[Message],
        text_tools: Sequence[dict[str, Any]] | None,
        response_format: type[BaseModel] | None,
    ) -> list[Message]:
        """The conversation as this server gets it: instructions it needs, roles it accepts."""
        request = list(messages)
        if text_tools:
            request = [Message(role="system", content=tools_instruction(text_tools)), *request]
            request = without_tool_roles(request)
        if response_format is not None and not self.settings.supports_response_format:
            request = [
                Message(role="system", content=schema_instruction(response_format)),
                *request,
            ]
        return merged_roles(request, fold_system=self.fold_system)

    def _tools_into_prompt(self, why: str) -> None:
        if not self.prompt_tools:
            self.prompt_tools = True
            log.warning(
                "%s: tools go into the prompt from now on, because %s; set "
                "model.supports_tools to false to say so up front (or serve the model with a "
                "chat template that supports tools, e.g. llama-server --jinja)",
                self.name,
                why,
            )

    def _cut_off(self, completion: Completion, params: dict[str, Any], spend: _Spend) -> ModelError:
        limit = params.get("max_tokens")
        return ModelError(
            f"{self.name}: the answer was cut off at max_tokens"
            + (f"={limit}" if limit is not None else "")
            + f" after {completion.usage.completion_tokens} tokens (finish_reason 'length'): "
            "raise the completion budget (runners.max_answer_tokens, runners.max_step_tokens)",
            cause="output_length",
            completion=spend.onto(completion),
        )

    async def _check_window(
        self,
        request: list[Message],
        tools: Sequence[dict[str, Any]] | None,
        params: dict[str, Any],
    ) -> None:
        """Refuse, before sending, a prompt that cannot fit the model's window."""
        window = await self.context_window()
        if window is None:
            return
        if _utf8_bound(request, tools) <= window * _SURE_OVERFLOW:
            return  # a token is at least one byte: no need to count
        local = count_request_tokens(self.tokenizer, request, tools)
        if local > window * _SURE_OVERFLOW:
            raise ModelError(
                f"{self.name}: the prompt is {local:,} tokens counted locally "
                f"({self.settings.encoding}) and the model's context window is {window:,} "
                "tokens: it cannot fit, so it was not sent; give the model a larger window "
                "(model.context_window, the server's context size) or send less "
                "(runners.full_context.window_tokens, the runners' context_tokens)",
                cause="context_overflow",
            )

    async def _tools_dropped(
        self,
        request: list[Message],
        tools: Sequence[dict[str, Any]],
        completion: Completion,
        params: dict[str, Any],
        spend: _Spend,
    ) -> bool:
        """Whether the server answered a tools request as if no tools had been sent.

        A server whose chat template cannot show tools drops them without a word. The prompt
        count it reports then matches that of the same messages without tools: a one-token
        probe of them tells (once per model). Counts a server cannot vouch for (none, or 0 for
        a cached prompt) tell nothing.
        """
        if not completion.usage.reported or completion.usage.prompt_tokens <= 0:
            return False
        probe = {**params, "max_tokens": 1}
        try:
            bare = await self._call(request, None, None, probe, spend)
        except ModelError:
            return False
        if not bare.usage.reported or bare.usage.prompt_tokens <= 0:
            return False
        # Not scaled by the server's tokens per local token: a chat template's fixed text
        # inflates that ratio on short prompts. Tokenizers differ by a third at most.
        added = completion.usage.prompt_tokens - bare.usage.prompt_tokens
        return abs(added) < _TOOLS_SEEN * tools_tokens(
            self.tokenizer, tools
        )  # a partly cached count differs a lot

    async def _call(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]] | None,
        response_format: type[BaseModel] | None,
        params: dict[str, Any],
        spend: _Spend,
    ) -> Completion:
        """One chat completion over HTTP, retried on transient faults; counts into ``spend``."""
        while True:
            try:
                return await self._attempts(messages, tools, response_format, params, spend)
            except _SystemRefused:
                self.fold_system = True
                log.warning(
                    "%s: the chat template refuses system messages; they are folded into the "
                    "first user message from now on (model.system_role: fold)",
                    self.name,
                )
                messages = merged_roles(messages, fold_system=True)

    async def _attempts(
        self,
        messages: list[Message],
        tools: Sequence[dict[str, Any]] | None,
        response_format: type[BaseModel] | None,
        params: dict[str, Any],
        spend: _Spend,
    ) -> Completion:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [m.to_openai() for m in messages],
            **params,
        }
        if tools:
            body["tools"] = list(tools)
        if response_format is not None and self.settings.supports_response_format:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": response_format.__name__,
                    "schema": json_schema(response_format),
                },
            }
        client, limiter = self._resources()
        rate = self.rate_limiter
        estimate = _estimate_tokens(messages, tools, body) if rate is not None else 0
        budget = self.settings.max_retries
        for attempt in range(budget + 1):
            spend.attempts += 1
            try:
                async with limiter:
                    if rate is not None:
                        # The turn is taken with the connection slot in hand, right before the
                        # request goes: a turn taken before waiting for a slot would be stale
                        # by the time the slot came, and calls queued at the slot limit would
                        # then go out back to back, faster than the budget allows.
                        await rate.acquire(estimate)
                    # The SDK's timeout applies per read; this one bounds the whole request.
                    # The body is already wire JSON: posted as it is, without the SDK's
                    # typed-parameter transform, which walks every node of the messages, tool
                    # and response schemas on every call (milliseconds of event-loop time).
                    # Retries, authentication and Azure's deployment paths still apply.
                    response = await asyncio.wait_for(
                        client.post("/chat/completions", body=body, cast_to=ChatCompletion),
                        self.settings.timeout_s,
                    )
                if not _is_completion(response):
                    raise _EmptyChoices()
                completion = self._completion(response, messages, tools)
            except (_EmptyChoices, openai.OpenAIError, TimeoutError) as exc:
                cause = self._failure(
                    exc,
                    refusing_tools=bool(tools),
                    sent_system=any(m.role == "system" for m in messages),
                )
                if rate is not None:
                    await self._pause_budget(rate, exc)
                if cause not in _TRANSIENT or (
                    cause == "timeout" and not self.settings.retry_timeouts
                ):
                    raise self._error(exc, cause, attempt) from exc
                if attempt == budget:
                    raise ModelError(
                        f"{self.name}: gave up after {attempt + 1} attempt(s): {_describe(exc)}",
                        cause=cause,
                    ) from exc
                delay = self._delay(attempt, exc)
                log.warning(
                    "%s: %s; retry %d of %d in %.1f s",
                    self.name,
                    _brief(exc),
                    attempt + 1,
                    budget,
                    delay,
                )
                await asyncio.sleep(delay)
            except (ValueError, TypeError, AttributeError) as exc:
                # Unparseable bodies (an HTML page from a proxy, invalid JSON, odd shapes).
                raise ModelError(
                    f"{self.name}: the server's answer could not be read: {_describe(exc)}",
                    cause="unreadable",
                ) from exc
            else:
                spend.usage = spend.usage + completion.usage
                if rate is not None:
                    await rate.settle(estimate, completion.usage.total_tokens)
                return completion
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pause_budget(self, rate: RateLimiter, exc: BaseException) -> None:
        """Hold back every caller of the budget for the Retry-After the server gave.

        Only for a wait this model would sit out itself: a longer one fails its calls at once
        (see ``_delay``), rather than leaving every caller of the run asleep for it.
        """
        if not isinstance(exc, openai.APIStatusError) or exc.status_code not in _PAUSING:
            return
        retry_after = _retry_after(exc)
        if retry_after is not None and retry_after <= self._longest_wait:
            await rate.pause(retry_after)

    @property
    def _longest_wait(self) -> float:
        """The longest Retry-After a call waits out instead of giving up."""
        return max(self.settings.backoff_max_s, self.settings.timeout_s)

    def _failure(
        self, exc: BaseException, *, refusing_tools: bool, sent_system: bool
    ) -> ModelFailure:
        """The cause of a failed attempt; raises to adapt when the server refuses a form."""
        if isinstance(exc, _EmptyChoices):
            return "server_error"
        if isinstance(exc, openai.APITimeoutError | TimeoutError):
            # A connection that never opened is a lost request; a read that never ended is a
            # generation in progress.
            connecting = type(exc.__cause__).__name__ == "ConnectTimeout"  # httpx or httpx2
            return "unreachable" if connecting else "timeout"
        if isinstance(exc, openai.APIConnectionError):
            return "unreachable"
        if isinstance(exc, openai.APIStatusError):
            text = _error_text(exc)
            if refusing_tools and _TOOLS_REFUSED.search(text):
                raise _ToolsRefused(f"HTTP {exc.status_code}") from exc
            if exc.status_code < 500 and _OVERFLOW.search(text):
                return "context_overflow"
            if sent_system and not self.fold_system and self.settings.system_role == "auto":
                if _SYSTEM_REFUSED.search(text):
                    raise _SystemRefused() from exc
            if exc.status_code in _GATEWAY_TIMEOUTS:
                return "timeout"  # a proxy gave up on a generation that may still be running
            if exc.status_code == 429:
                return "rate_limited"
            if exc.status_code >= 500:
                return "context_overflow" if _OVERFLOW.search(text) else "server_error"
            return "refused"
        return "unreadable"

    def _error(self, exc: BaseException, cause: ModelFailure, attempt: int) -> ModelError:
        """The ModelError of an attempt that is not retried, worded for its cause."""
        if cause == "timeout":
            message = (
                f"{self.name}: no answer within timeout_s={self.settings.timeout_s:g} s "
                f"(attempt {attempt + 1}); a timed-out request is not resent, since the server "
                "would start the same generation again: raise model.timeout_s for a slow "
                "server (or set model.retry_timeouts where a timeout means a lost request)"
            )
        elif cause == "context_overflow":
            message = (
                f"{self.name}: the prompt does not fit the model's context window "
                f"({_describe(exc)}); give the model a larger window or send less "
                "(model.context_window, runners.full_context.window_tokens)"
            )
        elif isinstance(exc, openai.APIStatusError):
            message = (
                f"{self.name}: the server refused the request ({exc.status_code}): {_describe(exc)}"
            )
        else:
            message = f"{self.name}: the server's answer could not be read: {_describe(exc)}"
        return ModelError(message, cause=cause)

    def _delay(self, attempt: int, exc: BaseException) -> float:
        jitter = self._random.uniform(
            0, min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempt)
        )
        retry_after = _retry_after(exc)
        if retry_after is None:
            return jitter  # full jitter
        if retry_after > self._longest_wait:
            raise ModelError(
                f"{self.name}: the server asks to wait {retry_after:.0f} s before retrying, "
                f"longer than backoff_max_s ({self.settings.backoff_max_s:g} s); try later",
                cause="rate_limited",
            ) from exc
        return max(retry_after, jitter)

    def _completion(
        self, response: Any, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None
    ) -> Completion:
        choice = response.choices[0]
        raw_calls = [_raw_call(k, call) for k, call in enumerate(choice.message.tool_calls or ())]
        content = choice.message.content
        if content is not None and not isinstance(content, str):  # content parts
            content = "".join(getattr(part, "text", "") or "" for part in content)
        message = Message(
            role="assistant", content=content, tool_calls=parse_tool_calls(raw_calls, tools)
        )
        reported = response.usage
        if (
            reported is not None
            and reported.prompt_tokens is not None
            and reported.completion_tokens is not None
        ):
            usage = Usage(
                prompt_tokens=reported.prompt_tokens,
                completion_tokens=reported.completion_tokens,
                reported=True,
            )
        else:
            answer = (message.content or "") + "".join(c.raw_arguments for c in message.tool_calls)
            usage = Usage(
                prompt_tokens=count_request_tokens(self.tokenizer, messages, tools),
                completion_tokens=self.tokenizer.count(answer),
                reported=False,
            )
        usage = usage.model_copy(update={"cost_usd": self._prices.cost(self.name, usage)})
        return Completion(
            message=message,
            finish_reason=choice.finish_reason,
            usage=usage,
            model=getattr(response, "model", None) or self.name,
        )


_TRANSIENT: frozenset[ModelFailure] = frozenset(
    {"timeout", "unreachable", "rate_limited", "server_error"}
)


def _estimate_tokens(
    messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None, body: dict[str, Any]
) -> int:
    """What a request books on a tokens per minute budget before it is sent.

    Its prompt estimated from its bytes (see ``_BYTES_PER_TOKEN``), and ``max_tokens`` for
    the answer when the request sets it (the answer is booked when settled otherwise).
    """
    size = _utf8_bound(messages, tools)
    if "response_format" in body:
        size += len(json.dumps(body["response_format"]))
    return -(-size // _BYTES_PER_TOKEN) + int(body.get("max_tokens") or 0)


def _utf8_bound(messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None) -> int:
    """An upper bound of a request's local token count: its bytes, with the framing."""
    size = sum(
        len((m.content or "").encode()) + sum(len(c.raw_arguments) for c in m.tool_calls) + 16
        for m in messages
    )
    return size + (len(json.dumps(list(tools)).encode()) if tools else 0) + 16


def _listed_window(listed: Any, model: str) -> int | None:
    """The window in a ``/v1/models`` listing: vLLM's max_model_len, llama.cpp's meta.n_ctx."""
    entries = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(entries, list):
        return None
    named = [e for e in entries if isinstance(e, dict) and e.get("id") == model]
    for entry in named or (entries if len(entries) == 1 else []):
        if not isinstance(entry, dict):
            continue
        meta = entry.get("meta")
        for value in (
            entry.get("max_model_len"),
            meta.get("n_ctx") if isinstance(meta, dict) else None,
        ):
            if isinstance(value, int) and value > 0:
                return value
    return None


async def _get_json(client: openai.AsyncOpenAI, path: str) -> Any:
    """The JSON a server answers ``GET path`` with; None when it has no such page."""
    try:
        return await client.get(path, cast_to=object)
    except (openai.OpenAIError, ValueError, TypeError):
        return None  # a server that does not say: the runners' own settings apply


def _props_window(props: Any) -> int | None:
    """The per-slot window in llama.cpp's ``/props``."""
    settings = props.get("default_generation_settings") if isinstance(props, dict) else None
    value = settings.get("n_ctx") if isinstance(settings, dict) else None
    return value if isinstance(value, int) and value > 0 else None


def _server_root(client: openai.AsyncOpenAI) -> str:
    """The server's root URL (llama.cpp serves /props beside /v1)."""
    base = str(client.base_url).rstrip("/")
    return base.removesuffix("/v1")


def _error_text(exc: openai.APIStatusError) -> str:
    """Everything the server said about a refusal: the SDK's message and the raw body."""
    try:
        raw = exc.response.text
    except Exception:  # a streamed or closed body: the message alone will do
        raw = ""
    return f"{exc.message} {raw}"


def _build_client(settings: ModelSettings) -> openai.AsyncOpenAI:
    api_key = os.environ.get(settings.api_key_env) or "not-needed"  # local servers take any key
    if settings.provider == "azure":
        if not settings.base_url:
            raise ModelError("Azure needs base_url: https://<resource>.openai.azure.com")
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.base_url,
            api_key=api_key,
            api_version=settings.azure_api_version,
            timeout=_timeouts(settings),
            max_retries=0,
        )
    return openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=api_key,
        timeout=_timeouts(settings),
        max_retries=0,
    )


def _timeouts(settings: ModelSettings) -> openai.Timeout:
    """A short wait for the connection, a long one for the answer."""
    return openai.Timeout(
        settings.timeout_s, connect=min(settings.connect_timeout_s, settings.timeout_s)
    )


def _is_completion(response: Any) -> bool:
    choices: Any = getattr(response, "choices", None)
    return bool(choices) and getattr(choices[0], "message", None) is not None


def _raw_call(k: int, call: Any) -> tuple[str, str, str]:
    """(id, name, arguments text) of a tool call, whatever shape the server sent."""
    function = getattr(call, "function", None)
    name = getattr(function, "name", None) or ""
    arguments = getattr(function, "arguments", None)
    if arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):  # some servers send the object itself
        arguments = json.dumps(arguments)
    return getattr(call, "id", None) or f"call_{k}", name, arguments


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    milliseconds = response.headers.get("retry-after-ms")
    value = response.headers.get("retry-after")
    try:
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000)
        if value is None:
            return None
        return max(0.0, float(value))
    except ValueError:
        try:  # an HTTP date
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _brief(exc: BaseException) -> str:
    """A failed attempt for a log line: its status or kind, never the server's words."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return _describe(exc) if isinstance(exc, _EmptyChoices | TimeoutError) else type(exc).__name__


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _EmptyChoices):
        return "the server returned no choices"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {str(exc)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
