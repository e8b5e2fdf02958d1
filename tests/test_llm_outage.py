"""An unreachable model is retried with backoff, and the outage is reported once when it starts and
once, with its length, when the model answers again."""

from __future__ import annotations

import asyncio

import pytest

from aimesh.embedded.processes import free_port
from aimesh.llm.client import LLM, LLMError
from testbed.scripted_llm import CHAT_MODEL, EMBED_MODEL, ScriptedLLM, serve

MESSAGES = [{"role": "user", "content": "[pass] add"}]


async def test_an_outage_is_ridden_out_and_reported_with_its_length():
    port, reports = free_port(), []

    async def report(state: str, seconds: float, detail: str) -> None:
        reports.append((state, seconds, detail))

    llm = LLM(f"http://127.0.0.1:{port}", CHAT_MODEL, EMBED_MODEL, retry_for=30, on_outage=report)
    call = asyncio.create_task(llm.chat(MESSAGES))
    await asyncio.sleep(1.5)  # down: the call is retrying
    assert not call.done() and [r[0] for r in reports] == ["unreachable"]
    runner = await serve(ScriptedLLM(), port)
    try:
        answer = await asyncio.wait_for(call, 15)
        again = await llm.chat(MESSAGES)
    finally:
        await runner.cleanup()
        await llm.close()
    assert "return a + b" in answer.text and "return a + b" in again.text
    assert [r[0] for r in reports] == ["unreachable", "recovered"]
    assert 1.5 <= reports[1][1] < 15


async def test_an_outage_longer_than_the_retry_window_is_an_llm_error():
    reports = []

    async def report(state: str, seconds: float, detail: str) -> None:
        reports.append(state)

    llm = LLM(f"http://127.0.0.1:{free_port()}", CHAT_MODEL, EMBED_MODEL, retry_for=1.5,
              on_outage=report)  # fmt: skip
    with pytest.raises(LLMError, match="no LLM answered"):
        await llm.chat(MESSAGES)
    await llm.close()
    assert reports == ["unreachable"]
