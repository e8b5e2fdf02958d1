"""Structured telemetry to `ai_telemetry`, in exactly the seed schema.

Telemetry must never take an agent down: a failure to publish is logged and forgotten. It is sent
outside transactions (`plain_send`): it reports on work, it is not the work's output.

One record per step: a measured step is a `metric` whose `extra` carries the step's other figures
(the Consumer's `llm_latency_ms` holds its tokens and memories recalled, the Sandbox's
`sandbox_ms` its status), never a record per figure. With a record per figure telemetry was 13.3
of the 28 Kafka messages of a cycle; folded it is 6, and the mesh under bench/mesh_throughput.py
ran about a sixth faster (the worker and the broker each handle every message).
"""

from __future__ import annotations

import logging
from typing import Any

from aimesh.cycle.records import Telemetry, now
from aimesh.stream.plain_send import send_plain
from aimesh.topics import telemetry_topic

log = logging.getLogger(__name__)


async def emit(
    agent: str,
    type: str,
    message: str,
    value: float | None = None,
    *,
    cycle_id: str = "",
    **extra: Any,
) -> None:
    """Publish one record keyed by its cycle (or its agent), so it sits with the cycle's events."""
    if cycle_id:
        extra["cycle_id"] = cycle_id
    record = Telemetry(
        agent=agent, type=type, message=message, value=value, timestamp=now(), extra=extra
    )
    try:
        await send_plain(telemetry_topic, cycle_id or agent, record)
    except Exception:  # telemetry is best effort by design
        log.exception("telemetry from %s could not be published", agent)


async def log_event(agent: str, message: str, *, cycle_id: str = "", **extra: Any) -> None:
    await emit(agent, "log", message, cycle_id=cycle_id, **extra)


async def metric(agent: str, name: str, value: float, *, cycle_id: str = "", **extra: Any) -> None:
    await emit(agent, "metric", name, value, cycle_id=cycle_id, **extra)


async def event(agent: str, name: str, *, cycle_id: str = "", **extra: Any) -> None:
    await emit(agent, "event", name, cycle_id=cycle_id, **extra)
