"""The model layer: one ChatModel protocol, and what implements and measures it.

OpenAI-compatible endpoints, a scripted mock, a record/replay cache, token counting and prices.
"""

from typing import TYPE_CHECKING, Any

from recordagent.llm.cache import CachedModel, CacheMiss, CacheMode, request_key
from recordagent.llm.client import ChatModel
from recordagent.llm.mock import MockModel, MockRequest, MockScriptExhausted
from recordagent.llm.pricing import PriceTable, load_prices
from recordagent.llm.tokens import count_request_tokens
from recordagent.llm.types import Completion, Message, ToolCall, Usage
from recordagent.settings import ModelSettings

if TYPE_CHECKING:
    from recordagent.llm.openai_compat import OpenAICompatModel

__all__ = [
    "CacheMiss",
    "CacheMode",
    "CachedModel",
    "ChatModel",
    "Completion",
    "Message",
    "MockModel",
    "MockRequest",
    "MockScriptExhausted",
    "OpenAICompatModel",
    "PriceTable",
    "ToolCall",
    "Usage",
    "build_model",
    "count_request_tokens",
    "load_prices",
    "request_key",
]


def build_model(settings: ModelSettings) -> ChatModel:
    """The model ``settings`` describe. A 'mock' provider needs a script: use MockModel."""
    if settings.provider == "mock":
        from recordagent.errors import UserError

        raise UserError(
            "model provider 'mock' has no script here: build MockModel(script) in code, use "
            "recordagent.configured_model(settings) for the scripted dry run, or set "
            "model.provider to 'openai' or 'azure' with a base_url"
        )
    from recordagent.llm.openai_compat import OpenAICompatModel

    return OpenAICompatModel(settings)


def __getattr__(name: str) -> Any:
    # The openai SDK takes half a second to import: load it when a client is first wanted.
    if name == "OpenAICompatModel":
        from recordagent.llm.openai_compat import OpenAICompatModel

        return OpenAICompatModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
