"""The state of each part for the dashboard's header: embedded or external, and reachable."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any
from urllib.parse import urlparse

import httpx
from faust.exceptions import ConsumerNotStarted

from aimesh import services
from aimesh.app import app, broker_options, settings
from aimesh.llm.client import DEFAULT_HOST
from aimesh.sandbox import SandboxUnavailable, active_layers
from aimesh.settings import first_host_port

PROBE_TIMEOUT_S = 1.0


async def _tcp_reachable(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _http_reachable(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
            return (await client.get(url)).status_code < 500
    except httpx.HTTPError:
        return False


def assigned_partitions() -> dict[str, list[int]]:
    """This worker's share of the work: the partitions of each topic it consumes now."""
    assigned: dict[str, list[int]] = {}
    try:
        partitions = app.consumer.assignment()
    except ConsumerNotStarted:  # the web server answers before the consumer runs
        partitions = set()
    for tp in partitions:
        assigned.setdefault(tp.topic, []).append(tp.partition)
    return {topic: sorted(numbers) for topic, numbers in sorted(assigned.items())}


async def broker_state() -> dict[str, Any]:
    host, port = first_host_port(settings.broker)
    return {
        "url": settings.broker,
        "kind": broker_options.profile.kind,
        "kind_reason": broker_options.profile.reason,
        "processing_guarantee": app.conf.processing_guarantee.value,
        "embedded": "broker" in settings.embedded,
        "reachable": await _tcp_reachable(host, port),
        "assigned": assigned_partitions(),
    }


async def llm_state() -> dict[str, Any]:
    host = settings.ollama_host or DEFAULT_HOST
    return {
        "host": host,
        "embedded": "llm" in settings.embedded,
        "reachable": await _http_reachable(f"{host}/api/tags"),
        "chat_model": settings.chat_model,
        "embed_model": settings.embed_model,
        "calls": dict(services.llm().calls),
    }


async def memory_state() -> dict[str, Any]:
    """Counts of stored failures and lessons, or the error that keeps memory from working."""
    state: dict[str, Any] = {
        "url": settings.qdrant_url or str(settings.memory_path / settings.memory_collection),
        "embedded": settings.qdrant_url is None,
    }
    try:
        state.update(counts=await services.memory().count(), error="", reachable=True)
    except Exception as exc:  # the status page reports, it does not fail
        state.update(counts={}, error=f"{type(exc).__name__}: {exc}", reachable=False)
    if settings.qdrant_url:
        parsed = urlparse(settings.qdrant_url)
        state["reachable"] = state["reachable"] and await _tcp_reachable(
            parsed.hostname or "127.0.0.1", parsed.port or 6333
        )
    return state


async def sandbox_state() -> dict[str, Any]:
    """The layers every run gets (starting a fork server the first time), and the limits."""
    state: dict[str, Any] = {"limits": dataclasses.asdict(settings.sandbox_limits)}
    try:
        state.update(layers=await active_layers(services.sandbox_pool()), error="", reachable=True)
    except SandboxUnavailable as exc:
        state.update(layers=[], error=str(exc), reachable=False)
    return state


async def parts() -> dict[str, Any]:
    broker, llm, memory, sandbox = await asyncio.gather(
        broker_state(), llm_state(), memory_state(), sandbox_state()
    )
    return {"broker": broker, "llm": llm, "memory": memory, "sandbox": sandbox}
