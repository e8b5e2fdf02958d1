"""The check every agent applies on arrival: a record with problems becomes a dead letter."""

from __future__ import annotations

from typing import Any

from faust.types import EventT

from aimesh.app import app
from aimesh.deadletter import send_dead_letter
from aimesh.telemetry import event as telemetry_event


async def accepted(agent: str, event: EventT[Any]) -> bool:
    """True when the event's record is usable; otherwise dead-letter it with the reasons."""
    problems = event.value.problems()
    if not problems:
        return True
    message = event.message
    reason = "; ".join(problems)
    await send_dead_letter(
        app,
        topic=message.topic,
        reason=f"invalid {type(event.value).__name__}: {reason}",
        payload=message.value,
        key=message.key,
        agent=agent,
        partition=message.partition,
        offset=message.offset,
    )
    await telemetry_event(agent, "dead_letter", topic=message.topic, reason=reason)
    return False
