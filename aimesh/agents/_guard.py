"""What every agent applies to each message: checks on arrival, and a net for the unexpected.

A record with problems, or one under another cycle's key, becomes a dead letter; so does a
message whose handling raised, with the error as the reason. The agent goes on either way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import EventT

from aimesh.app import app
from aimesh.stream.deadletter import send_dead_letter
from aimesh.stream.telemetry import event as telemetry_event

log = logging.getLogger(__name__)


async def _reject(agent: str, event: EventT[Any], reason: str) -> None:
    message = event.message
    await send_dead_letter(
        app,
        topic=message.topic,
        reason=reason,
        payload=message.value,
        key=message.key,
        agent=agent,
        partition=message.partition,
        offset=message.offset,
    )
    await telemetry_event(agent, "dead_letter", topic=message.topic, reason=reason[:500])


async def accepted(agent: str, event: EventT[Any]) -> bool:
    """True when the event's record is usable; otherwise dead-letter it with the reasons."""
    record = event.value
    problems = record.problems()
    cycle_id = getattr(record, "cycle_id", None)
    if cycle_id is not None and not problems and event.key != cycle_id:
        problems = [f"key {event.key!r} is not the record's cycle_id {cycle_id!r}"]
    if not problems:
        return True
    await _reject(agent, event, f"invalid {type(record).__name__}: {'; '.join(problems)}")
    return False


async def handle(agent: str, event: EventT[Any], handler: Callable[[Any], Awaitable[None]]) -> None:
    """Check the event, then run `handler` on its record; an exception dead-letters the message."""
    if not await accepted(agent, event):
        return
    try:
        await handler(event.value)
    except Exception as exc:  # the agent must outlive any one message
        log.exception("%s failed on a message from %s", agent, event.message.topic)
        await _reject(agent, event, f"{agent} failed: {type(exc).__name__}: {exc}")
