"""The engines a worker uses (LLM, memory, sandbox, the archive), built once from the settings.

Built lazily: importing the app (for `faust --help`, or a test) must not open Qdrant's files or
connect anywhere.
"""

from __future__ import annotations

from functools import lru_cache

from aimesh.app import app, settings
from aimesh.archive import CycleArchive
from aimesh.llm.client import LLM
from aimesh.memory import MemorySkill, open_memory
from aimesh.sandbox import Limits, ServerPool, configure
from aimesh.stream.telemetry import emit


async def _report_outage(state: str, seconds: float, detail: str) -> None:
    """An LLM outage in telemetry: `llm_unreachable` when it starts, `llm_recovered` (with its
    length in seconds as the value) when the model answers again."""
    if state == "unreachable":
        await emit("llm", "event", "llm_unreachable", error=detail)
    else:
        await emit("llm", "metric", "llm_recovered", round(seconds, 3), host=detail)


@lru_cache(maxsize=1)
def llm() -> LLM:
    """Closed when the worker stops, after its agents and timers (the app's exit stack unwinds
    last): closing it as a child service could fail a call still under way as an outage."""
    client = LLM(
        settings.ollama_host,
        settings.chat_model,
        settings.embed_model,
        timeout=settings.llm_timeout,
        retry_for=settings.llm_timeout,
        on_outage=_report_outage,
    )
    app.async_exit_stack.push_async_callback(client.close)
    return client


@lru_cache(maxsize=1)
def memory() -> MemorySkill:
    """Closed when the worker stops, like the LLM client: the embedded engine's process then
    flushes and lets go of its folder before a restarted worker asks for it."""
    skill = open_memory(
        llm().embed,
        settings.embed_model,
        url=settings.qdrant_url,
        path=settings.memory_path,
        collection=settings.memory_collection,
        legacy=settings.legacy_memory_path,
    )
    app.async_exit_stack.push_async_callback(skill.close)
    return skill


@lru_cache(maxsize=1)
def limits() -> Limits:
    return settings.sandbox_limits


@lru_cache(maxsize=1)
def sandbox_pool() -> ServerPool:
    """The fork servers every run of this process uses (started lazily, on the first run)."""
    return configure(settings.sandbox_pool_config())


@lru_cache(maxsize=1)
def archive() -> CycleArchive:
    """The CSV archive: the Persistence agent writes it, the web views read it."""
    return CycleArchive(settings.tables_dir)
