"""The LLM client's HTTP (aiohttp under the `ollama` client) keeps what users set for httpx."""

from __future__ import annotations

import pytest

from aimesh.embedded.processes import free_port
from aimesh.llm.client import LLM
from testbed.scripted_llm import CHAT_MODEL, EMBED_MODEL, ScriptedLLM, serve

UNROUTABLE = "http://192.0.2.1:11434"  # TEST-NET-1: reachable only through the proxy


async def test_the_proxy_variables_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY reaches the model behind a proxy, as it did through httpx's own transport."""
    port = free_port()
    proxy = await serve(ScriptedLLM(), port)  # answers the proxied request itself
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    llm = LLM(UNROUTABLE, CHAT_MODEL, EMBED_MODEL, timeout=10, retry_for=0)
    try:
        answer = await llm.chat([{"role": "user", "content": "[pass] add"}])
    finally:
        await llm.close()
        await proxy.cleanup()
    assert "return a + b" in answer.text
