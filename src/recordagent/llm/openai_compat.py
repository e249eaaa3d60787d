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
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import openai
from pydantic import BaseModel

from recordagent.errors import ModelError
from recordagent.llm.client import (
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
        self._client = client or _build_client(settings)
        self._limiter = limiter or asyncio.Semaphore(settings.max_concurrency)
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

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

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
        if text_tools:
            assert tools is not None
            calls, problem = parse_text_tool_calls(completion.text, tools)
            if problem:  # one repair, as for structured output
                repair = [
                    *request,
                    completion.message,
                    Message(role="user", content=f"{problem}. Resend the JSON object only."),
                ]
                completion, more = await self._call(repair, tools, response_format, params)
                attempts += more
                usage = usage + completion.usage
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
        if response_format is not None:
            parsed, problem = parse_structured(completion.text, response_format)
            if parsed is None:
                # One repair: show the model its answer and what was wrong with it.
                repair = [
                    *request,
                    completion.message,
                    Message(
                        role="user",
                        content="That answer does not validate against the schema: "
                        f"{problem[:1500]}\nReply with the corrected JSON object only.",
                    ),
                ]
                completion, more = await self._call(repair, tools, response_format, params)
                attempts += more
                usage = usage + completion.usage
                parsed, problem = parse_structured(completion.text, response_format)
                if parsed is None:
                    raise ModelError(
                        f"{self.name}: the structured answer did not validate after one repair: "
                        f"{problem[:500]}"
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
                    "schema": response_format.model_json_schema(),
                },
            }
        budget = self.settings.max_retries
        for attempt in range(budget + 1):
            try:
                async with self._limiter:
                    response = await self._client.chat.completions.create(**body)
                if not response.choices:
                    raise _EmptyChoices()
                return self._completion(response, messages, tools), attempt + 1
            except (*_RETRYABLE, _EmptyChoices) as exc:
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
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, exc: BaseException) -> float:
        retry_after = _retry_after(exc)
        if retry_after is not None:
            return min(retry_after, self.settings.backoff_max_s)
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempt)
        return self._random.uniform(0, ceiling)  # full jitter

    def _completion(
        self, response: Any, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None
    ) -> Completion:
        choice = response.choices[0]
        raw_calls = [
            (call.id, call.function.name, call.function.arguments or "")
            for call in (choice.message.tool_calls or ())
            if getattr(call, "function", None) is not None
        ]
        message = Message(
            role="assistant",
            content=choice.message.content,
            tool_calls=parse_tool_calls(raw_calls, tools),
        )
        if response.usage is not None:
            usage = Usage(
                prompt_tokens=response.usage.prompt_tokens or 0,
                completion_tokens=response.usage.completion_tokens or 0,
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


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _EmptyChoices):
        return "the server returned no choices"
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {str(exc)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
