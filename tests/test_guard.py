"""The agents' safety net: a handler that raises dead-letters its message, and the next one runs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aimesh.agents import _guard as guard
from aimesh.cycle.records import Review


def event(record: Any, key: str) -> Any:
    message = SimpleNamespace(topic="ai_reviews", value=b"{}", key=b'"k"', partition=0, offset=7)
    return SimpleNamespace(value=record, key=key, message=message)


async def test_a_raising_handler_dead_letters_the_message_and_returns(monkeypatch):
    letters: list[dict[str, Any]] = []

    async def record_letter(app: Any, **letter: Any) -> None:
        letters.append(letter)

    async def no_telemetry(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(guard, "send_dead_letter", record_letter)
    monkeypatch.setattr(guard, "telemetry_event", no_telemetry)
    review = Review(cycle_id="c", attempt=1, score=0.5, critique="ok")
    handled = []

    async def explode(record: Any) -> None:
        raise KeyError("boom")

    async def keep(record: Any) -> None:
        handled.append(record)

    await guard.handle("reviewer", event(review, "c"), explode)
    await guard.handle("reviewer", event(review, "other"), keep)
    await guard.handle("reviewer", event(review, "c"), keep)
    assert [letter["reason"] for letter in letters] == [
        "reviewer failed: KeyError: 'boom'",
        "invalid Review: key 'other' is not the record's cycle_id 'c'",
    ]
    assert letters[0]["offset"] == 7 and letters[0]["agent"] == "reviewer"
    assert handled == [review]
