"""A ChatModel for any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama, llama.cpp, LiteLLM).

Built on the ``openai`` SDK's async client with the SDK's own retries switched off: retries
here back off exponentially with full jitter, honour ``Retry-After``, and count against one
budget per call. A semaphore shared by every call of a run caps requests in flight. Tool calls
whose arguments are not JSON, or that name an unknown tool, come back as ToolCalls carrying a
corrective error instead of raising. Structured output uses ``response_format`` (JSON schema)
where the server supports it, and otherwise the schema in the prompt; either way the answer is
validated, and one repair is asked for when it does not validate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from recordagent.errors import ModelError, StructuredOutputError
from recordagent.llm.client import (
    json_schema,
    parse_structured,
    parse_text_tool_calls,
    parse_tool_calls,
    schema_instruction,
    tools_instruction,
    without_tool_roles,
)
from recordagent.llm.pricing import PriceTable, load_prices
from recordagent.llm.tokens import count_request_tokens
from recordagent.llm.types import Completion, Message, Usage
from recordagent.records.tokens import Tokenizer
from recordagent.settings import ModelSettings

__all__ = ["OpenAICompatModel"]

_RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
)
_PARAMS = {"temperature", "max_tokens", "seed", "reasoning_effort", "top_p", "stop"}


class _EmptyChoices(Exception):
    """The server answered 200 without a choice: treated like a transient server fault."""


class OpenAICompatModel:
    """Chat completions from an OpenAI-compatible endpoint.

    Args:
        settings: Endpoint, model, timeouts, retry budget and concurrency.
        client: An ``openai.AsyncOpenAI`` to use instead of building one (tests, proxies).
        limiter: A semaphore shared with other models of the run; one of
            ``settings.max_concurrency`` slots is made when omitted.
        prices: Price table; the packaged one (or ``settings.price_file``) when omitted.
        tokenizer: Counts tokens when the server reports no usage.
    """

    def __init__(
        self,
        settings: ModelSettings,
        *,
        client: openai.AsyncOpenAI | None = None,
        limiter: asyncio.Semaphore | None = None,
        prices: PriceTable | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.settings = settings
        # Our retries only: an injected client keeps its options but loses the SDK's retries.
        self._given_client = client.with_options(max_retries=0) if client is not None else None
        self._given_limiter = limiter
        # The HTTP pool and the semaphore belong to one event loop; a model used from another
        # loop (a second asyncio.run) gets its own.
        self._per_loop: dict[int, tuple[openai.AsyncOpenAI, asyncio.Semaphore]] = {}
        self._prices = prices or load_prices(settings.price_file)
        self._tokenizer = tokenizer
        self._random = random.Random()

    @property
    def name(self) -> str:
        """The model name."""
        return self.settings.model

    @property
    def is_mock(self) -> bool:
        """Never: this talks to a real endpoint."""
        return False

    async def context_window(self) -> int | None:
        """The model's context window in its own tokens: the setting (the server is asked next)."""
        return self.settings.context_window

    async def close(self) -> None:
        """Close the HTTP connections of the running event loop."""
        entry = self._per_loop.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
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
            ModelError: The retry budget ran out, the server refused the request (4xx), or the
                structured answer did not validate even after one repair.
            ValueError: An unknown parameter name.
        """
        unknown = set(params) - _PARAMS
        if unknown:
            raise ValueError(f"unknown completion parameter(s): {', '.join(sorted(unknown))}")
        clock = time.perf_counter()
        request = list(messages)
        text_tools = bool(tools) and not self.settings.supports_tools
        if text_tools:
            assert tools is not None
            request = [Message(role="system", content=tools_instruction(tools)), *request]
            request = without_tool_roles(request)
        if response_format is not None and not self.settings.supports_response_format:
            request = [
                Message(role="system", content=schema_instruction(response_format)),
                *request,
            ]
        completion, attempts = await self._call(request, tools, response_format, params)
        usage = completion.usage

        async def repair(answer: Completion, instruction: str) -> Completion:
            # One repair: the model sees its answer and what was wrong with it.
            nonlocal attempts, usage
            retry = [*request, answer.message, Message(role="user", content=instruction)]
            fixed, more = await self._call(retry, tools, response_format, params)
            attempts += more
            usage = usage + fixed.usage
            return fixed

        if text_tools:
            assert tools is not None
            calls, problem = parse_text_tool_calls(completion.text, tools)
            if problem:
                completion = await repair(completion, f"{problem}. Resend the JSON object only.")
                calls, problem = parse_text_tool_calls(completion.text, tools)
                if problem:
                    raise ModelError(f"{self.name}: tool call text still invalid: {problem}")
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
                        completion.model_copy(
                            update={
                                "usage": usage,
                                "latency_s": round(time.perf_counter() - clock, 6),
                                "attempts": attempts,
                            }
                        ),
                    )
            completion = completion.model_copy(update={"parsed": parsed})
        return completion.model_copy(
            update={
                "usage": usage,
                "latency_s": round(time.perf_counter() - clock, 6),
                "attempts": attempts,
            }
        )

    async def _call(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None,
        response_format: type[BaseModel] | None,
        params: dict[str, Any],
    ) -> tuple[Completion, int]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [m.to_openai() for m in messages],
            **params,
        }
        if tools and self.settings.supports_tools:
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
        budget = self.settings.max_retries
        for attempt in range(budget + 1):
            try:
                async with limiter:
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
                return self._completion(response, messages, tools), attempt + 1
            except (*_RETRYABLE, _EmptyChoices, TimeoutError) as exc:
                if attempt == budget:
                    raise ModelError(
                        f"{self.name}: gave up after {attempt + 1} attempt(s): {_describe(exc)}"
                    ) from exc
                await asyncio.sleep(self._delay(attempt, exc))
            except openai.APIStatusError as exc:  # other 4xx: retrying cannot help
                raise ModelError(
                    f"{self.name}: the server refused the request ({exc.status_code}): "
                    f"{_describe(exc)}"
                ) from exc
            except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
                # Unparseable bodies (an HTML page from a proxy, invalid JSON, odd shapes).
                raise ModelError(
                    f"{self.name}: the server's answer could not be read: {_describe(exc)}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, exc: BaseException) -> float:
        jitter = self._random.uniform(
            0, min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempt)
        )
        retry_after = _retry_after(exc)
        if retry_after is None:
            return jitter  # full jitter
        if retry_after > max(self.settings.backoff_max_s, self.settings.timeout_s):
            raise ModelError(
                f"{self.name}: the server asks to wait {retry_after:.0f} s before retrying, "
                f"longer than backoff_max_s ({self.settings.backoff_max_s:g} s); try later"
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
            tokenizer = self._tokenizer or Tokenizer(self.settings.encoding)
            self._tokenizer = tokenizer
            answer = (message.content or "") + "".join(c.raw_arguments for c in message.tool_calls)
            usage = Usage(
                prompt_tokens=count_request_tokens(tokenizer, messages, tools),
                completion_tokens=tokenizer.count(answer),
                reported=False,
            )
        usage = usage.model_copy(update={"cost_usd": self._prices.cost(self.name, usage)})
        return Completion(
            message=message,
            finish_reason=choice.finish_reason,
            usage=usage,
            model=getattr(response, "model", None) or self.name,
        )


def _build_client(settings: ModelSettings) -> openai.AsyncOpenAI:
    api_key = os.environ.get(settings.api_key_env) or "not-needed"  # local servers take any key
    if settings.provider == "azure":
        if not settings.base_url:
            raise ModelError("Azure needs base_url: https://<resource>.openai.azure.com")
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.base_url,
            api_key=api_key,
            api_version=settings.azure_api_version,
            timeout=settings.timeout_s,
            max_retries=0,
        )
    return openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=api_key,
        timeout=settings.timeout_s,
        max_retries=0,
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _EmptyChoices):
        return "the server returned no choices"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {str(exc)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
