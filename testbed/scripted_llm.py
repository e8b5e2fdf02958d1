"""An Ollama-compatible server with scripted answers, for tests only.

It speaks the same HTTP API as Ollama (the routes the official client uses), so the product is
tested through its real client and network path. Answers depend on markers in the task title:
  [pass]    correct code at once          [fix]     wrong code, then correct code when asked to fix
  [fail]    always wrong code             [garbage] prose with no code
  [badjson] correct code, but the review is not JSON
and `answers` maps any other text found in the prompt to the code to answer with.
Embeddings are bags of hashed words: texts sharing words are near, which is all memory needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from typing import Any

from aiohttp import web

CHAT_MODEL = "scripted-coder"
EMBED_MODEL = "scripted-embed"
DIMENSION = 64

GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
BAD = "```python\ndef add(a, b):\n    return a - b\n```"
PROSE = "I would rather talk about the weather today. Sunny, mostly."
TASK = {
    "title": "Add two numbers",
    "description": "Return the sum of a and b.",
    "function_name": "add",
    "signature": "def add(a, b):",
    "solution": "def add(a, b):\n    return a + b",
    # the last test expects a wrong value, as small models' tests often do: the Producer drops it
    "tests": [
        "assert add(1, 2) == 3",
        "assert add(0, 0) == 0",
        "assert add(-1, 1) == 0",
        "assert add(2, 2) == 5",
    ],
}


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSION
    for word in re.findall(r"[a-z_]+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSION] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class ScriptedLLM:
    """Holds the script and a log of every chat request, so tests can read the prompts sent."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.chats: list[dict[str, Any]] = []
        self.answers: dict[str, str] = {}  # text in the prompt -> the code to answer with

    def answer(self, messages: list[dict[str, str]]) -> str:
        system = messages[0]["content"] if messages else ""
        user = messages[-1]["content"] if messages else ""
        if "invent" in system.lower():
            return json.dumps(TASK)
        if "review" in system.lower():
            if "[badjson]" in user:
                return "this is not json {"
            return json.dumps({"score": 0.8, "critique": "Clear and correct.", "issues": []})
        for key, code in self.answers.items():
            if key in user:
                return f"```python\n{code}\n```"
        if "[garbage]" in user:
            return PROSE
        if "[fail]" in user:
            return BAD
        if "[fix]" in user:
            return GOOD if "FIX THIS CODE:" in user else BAD
        return GOOD

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.chats.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        content = self.answer(body.get("messages", []))
        return web.json_response(
            {
                "model": body.get("model", CHAT_MODEL),
                "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": content},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 10,
                "eval_count": len(content.split()),
            }
        )

    async def embed(self, request: web.Request) -> web.Response:
        body = await request.json()
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        return web.json_response(
            {"model": body.get("model", EMBED_MODEL), "embeddings": [embed(t) for t in inputs]}
        )

    async def tags(self, request: web.Request) -> web.Response:
        names = (CHAT_MODEL, EMBED_MODEL)
        return web.json_response({"models": [{"name": n, "model": n} for n in names]})

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/embed", self.embed)
        app.router.add_get("/api/tags", self.tags)
        app.router.add_get("/", self.root)
        return app


async def serve(llm: ScriptedLLM, port: int, host: str = "127.0.0.1") -> web.AppRunner:
    # Stopping drops requests still in flight after 1 s, as a server that goes down does;
    # aiohttp's default waits 60 s for them (a fault test's LLM outage timed out on that).
    runner = web.AppRunner(llm.app(), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def main() -> None:
    """Run standalone (used by the benchmark and by hand): python tests/scripted_llm.py PORT."""
    import sys

    async def forever() -> None:
        await serve(ScriptedLLM(), int(sys.argv[1]))
        await asyncio.Event().wait()

    asyncio.run(forever())


if __name__ == "__main__":
    main()
