"""A Faust Topic that sends undecodable messages to the dead-letter topic instead of crashing.

Faust's own Topic logs a decode error and throws it into the agent's stream; here the raw bytes
and the reason go to `ai_dead_letters` and the agent simply sees the next message.
"""

from __future__ import annotations

import logging

import faust
from faust.types import Message
from typing_extensions import override

from aimesh.cycle.records import DeadLetter, now

log = logging.getLogger(__name__)

DEAD_LETTER_TOPIC = "ai_dead_letters"
MAX_PAYLOAD = 64_000
_REMEMBERED = 4096
_reported: dict[tuple[str, int | None, int | None], None] = {}


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw[:MAX_PAYLOAD]


async def send_dead_letter(
    app: faust.App,
    *,
    topic: str,
    reason: str,
    payload: bytes | str | None,
    key: bytes | str | None = None,
    agent: str = "",
    partition: int | None = None,
    offset: int | None = None,
) -> None:
    """Publish one dead letter under the original raw key, so it sits with its cycle's partition.

    Several agents read the same topic; the first to reject a message reports it, the rest skip.
    """
    if offset is not None:
        where = (topic, partition, offset)
        if where in _reported:
            return
        _reported[where] = None
        if len(_reported) > _REMEMBERED:
            del _reported[next(iter(_reported))]
    letter = DeadLetter(
        topic=topic,
        reason=reason[:2000],
        payload=_text(payload),
        key=_text(key),
        agent=agent,
        partition=partition,
        offset=offset,
        timestamp=now(),
    )
    log.warning("dead letter from %s: %s", topic, reason)
    raw_key = key.encode() if isinstance(key, str) else key
    await app.send(DEAD_LETTER_TOPIC, key=raw_key, value=letter, key_serializer="raw")


class DeadLetteringTopic(faust.Topic):
    """Topic whose decode errors become dead letters: a malformed message never stops an agent."""

    @override
    async def on_key_decode_error(self, exc: Exception, message: Message) -> None:
        await self._dead_letter("undecodable key", exc, message)

    @override
    async def on_value_decode_error(self, exc: Exception, message: Message) -> None:
        await self._dead_letter("undecodable value", exc, message)

    async def _dead_letter(self, what: str, exc: Exception, message: Message) -> None:
        await send_dead_letter(
            self.app,
            topic=message.topic,
            reason=f"{what}: {type(exc).__name__}: {exc}",
            payload=message.value,
            key=message.key,
            partition=message.partition,
            offset=message.offset,
        )
