"""The embedded Ollama-compatible server, driven by the official `ollama` client.

Real-backend tests share one server (and so one loaded model) per module; the error paths and
streaming shape use tiny fakes so they stay instant.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import ollama
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aimesh.llm.backends import (
    TEMPLATE_TOKENS_FIXED,
    TEMPLATE_TOKENS_PER_MESSAGE,
    Completion,
    fit_messages,
)
from aimesh.llm.catalog import DEFAULT_CHAT_MODEL
from aimesh.llm.server import DEFAULT_TEMPERATURE, build_app
from tests.embedded_llm import serving

CHAT = "smollm2:135m"
EMBED = "e5-small"
FAST = {"num_predict": 32, "temperature": 0.0, "seed": 7}


@pytest.fixture(scope="module")
def real_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("models")) as host:
        yield host


@pytest_asyncio.fixture
async def client(real_host: str) -> AsyncIterator[ollama.AsyncClient]:
    api = ollama.AsyncClient(host=real_host)
    yield api
    await api.close()


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.asyncio
async def test_chat_returns_text(client: ollama.AsyncClient) -> None:
    reply = await client.chat(
        model=CHAT,
        messages=[{"role": "user", "content": "Name one colour."}],
        options=FAST,
    )
    assert reply.message.role == "assistant"
    assert reply.message.content
    assert reply.done and reply.done_reason in {"stop", "length"}
    assert reply.eval_count and 0 < reply.eval_count <= FAST["num_predict"]
    assert reply.prompt_eval_count and reply.total_duration


@pytest.mark.asyncio
async def test_the_default_code_model_writes_code_that_passes(client: ollama.AsyncClient) -> None:
    """The real Qwen2.5-Coder 0.5B, as `make run` uses it, on a tiny task, judged by the sandbox."""
    from aimesh.cycle import prompts
    from aimesh.cycle.codeextract import extract_code
    from aimesh.sandbox import build_program, run_program

    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    task = prompts.task_prompt("Add", "Return the sum of a and b.", "def add(a, b):", tests)
    reply = await client.chat(
        model=DEFAULT_CHAT_MODEL,
        messages=prompts.solve_messages(task, []),
        options={"num_predict": 96, "temperature": 0.0, "seed": 7},
    )
    code = extract_code(reply.message.content or "", "add")
    assert "def add" in code, reply.message.content
    result = await run_program(build_program(code, tests))
    assert result.passed, (code, result.error)


@pytest.mark.asyncio
async def test_chat_follows_json_schema(client: ollama.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "score": {"type": "number"},
        },
        "required": ["title", "score"],
    }
    prompt = "Rate the film Alien from 0 to 10. Answer as JSON with title and score."
    reply = await client.chat(
        model=CHAT,
        messages=[{"role": "user", "content": prompt}],
        format=schema,
        options={**FAST, "num_predict": 48},
    )
    data = json.loads(reply.message.content or "")
    assert isinstance(data["title"], str) and len(data["title"]) <= 40
    assert isinstance(data["score"], int | float)


@pytest.mark.asyncio
async def test_generate_returns_response(client: ollama.AsyncClient) -> None:
    reply = await client.generate(
        model=CHAT, prompt="Complete: the sky is", system="Be brief.", options=FAST
    )
    assert reply.response
    assert reply.done


@pytest.mark.asyncio
async def test_embed_places_similar_texts_closer(client: ollama.AsyncClient) -> None:
    texts = [
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Corporate tax returns are due in April.",
    ]
    reply = await client.embed(model=EMBED, input=texts)
    assert len(reply.embeddings) == 3
    assert all(len(vector) == 384 for vector in reply.embeddings)
    cat, kitten, tax = (list(v) for v in reply.embeddings)
    assert _cosine(cat, kitten) > _cosine(cat, tax)
    assert reply.prompt_eval_count and reply.prompt_eval_count > 3


@pytest.mark.asyncio
async def test_embed_two_texts_and_legacy_embeddings(
    client: ollama.AsyncClient,
) -> None:
    reply = await client.embed(model=EMBED, input=["first", "second"])
    assert [len(v) for v in reply.embeddings] == [384, 384]
    legacy = await client.embeddings(model=EMBED, prompt="first")
    assert _cosine(list(legacy.embedding), list(reply.embeddings[0])) > 0.999


@pytest.mark.asyncio
async def test_list_shows_the_installed_models(client: ollama.AsyncClient) -> None:
    listed = await client.list()
    by_name = {m.model: m for m in listed.models}
    assert {CHAT, DEFAULT_CHAT_MODEL, EMBED} <= set(by_name)
    chat = by_name[CHAT]
    assert chat.size == 98_362_432
    assert chat.digest and len(chat.digest) == 64
    assert chat.details and chat.details.format == "gguf"
    coder = by_name[DEFAULT_CHAT_MODEL].details
    assert coder is not None
    assert (coder.family, coder.parameter_size, coder.quantization_level) == (
        "qwen2",
        "494M",
        "Q4_K_M",
    )


@pytest.mark.asyncio
async def test_unknown_model_is_404(client: ollama.AsyncClient) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        await client.chat(model="llama9:1t", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404
    assert info.value.error == 'model "llama9:1t" not found, try pulling it first'


class FakeChat:
    """Echoes the last message and remembers the call, to check the option mapping."""

    name = "fake-chat"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        json_mode: bool,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> Completion:
        self.calls.append(
            {
                "messages": messages,
                "schema": schema,
                "json_mode": json_mode,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "seed": seed,
            }
        )
        return Completion(f"echo {messages[-1]['content']}", 5, 2, "stop")


class FakeEmbed:
    name = "fake-embed"
    dimension = 2

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0] for t in texts]


Fake = tuple[TestClient[web.Request, web.Application], FakeChat]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[Fake]:
    chat = FakeChat()
    async with TestClient(TestServer(build_app(chat, FakeEmbed()))) as http:
        yield http, chat


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/chat", "{not json", 400),
        ("/api/chat", "[1, 2]", 400),
        ("/api/chat", json.dumps({"messages": []}), 400),
        ("/api/chat", json.dumps({"model": "", "messages": []}), 400),
        ("/api/chat", json.dumps({"model": "fake-chat", "format": "yaml"}), 400),
        ("/api/chat", json.dumps({"model": "fake-chat", "messages": "hi"}), 400),
        (
            "/api/chat",
            json.dumps({"model": "fake-chat", "options": {"num_predict": "9"}}),
            400,
        ),
        ("/api/chat", json.dumps({"model": "fake-embed", "messages": []}), 400),
        ("/api/generate", json.dumps({"model": "fake-chat", "prompt": 3}), 400),
        ("/api/embed", json.dumps({"model": "fake-embed", "input": [1]}), 400),
        ("/api/embed", json.dumps({"model": "fake-chat", "input": "x"}), 400),
        ("/api/embed", json.dumps({"model": "nope", "input": "x"}), 404),
        ("/api/embeddings", json.dumps({"prompt": "x"}), 400),
    ],
)
async def test_bad_requests_get_ollama_errors(
    fake: Fake, path: str, body: str, status: int
) -> None:
    http, _ = fake
    response = await http.post(path, data=body)
    assert response.status == status
    assert isinstance((await response.json())["error"], str)


@pytest.mark.asyncio
async def test_empty_model_is_rejected_by_server(fake: Fake) -> None:
    http, _ = fake
    response = await http.post("/api/generate", json={"model": "", "prompt": "hi"})
    assert response.status == 400
    assert await response.json() == {"error": "model is required"}


@pytest.mark.asyncio
async def test_chat_stream_is_one_chunk_then_done(fake: Fake) -> None:
    http, _ = fake
    body = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "ping"}],
        "stream": True,
    }
    response = await http.post("/api/chat", json=body)
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert [line["done"] for line in lines] == [False, True]
    assert lines[0]["message"] == {"role": "assistant", "content": "echo ping"}
    assert lines[1]["message"]["content"] == ""
    assert lines[1]["done_reason"] == "stop" and lines[1]["eval_count"] == 2


@pytest.mark.asyncio
async def test_real_client_streams_generate(fake: Fake) -> None:
    http, _ = fake
    api = ollama.AsyncClient(host=str(http.make_url("")))
    parts = [p async for p in await api.generate(model="fake-chat", prompt="ping", stream=True)]
    await api.close()
    assert "".join(p.response or "" for p in parts) == "echo ping"
    assert parts[-1].done and not parts[0].done


@pytest.mark.asyncio
async def test_options_and_format_reach_the_backend(fake: Fake) -> None:
    http, chat = fake
    api = ollama.AsyncClient(host=str(http.make_url("")))
    messages = [{"role": "user", "content": "x"}]
    schema = {"type": "object"}
    options = {"num_predict": 9, "temperature": 0.5, "seed": 3}
    await api.chat(model="fake-chat", messages=messages, format=schema, options=options)
    await api.chat(model="fake-chat", messages=messages, format="json")
    reply = await api.generate(model="fake-chat", prompt="p", system="s")
    await api.close()
    first, second, third = chat.calls
    assert first["schema"] == schema and not first["json_mode"]
    assert (first["max_tokens"], first["temperature"], first["seed"]) == (9, 0.5, 3)
    assert second["json_mode"] and second["schema"] is None
    assert second["max_tokens"] == -1 and second["temperature"] == DEFAULT_TEMPERATURE
    assert third["messages"] == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "p"},
    ]
    assert reply.response == "echo p"


@pytest.mark.asyncio
async def test_empty_prompt_only_loads(fake: Fake) -> None:
    http, chat = fake
    api = ollama.AsyncClient(host=str(http.make_url("")))
    reply = await api.generate(model="fake-chat")
    await api.close()
    assert reply.done_reason == "load" and reply.response == ""
    assert chat.calls == []


@pytest.mark.asyncio
async def test_root_version_and_tags_without_details(fake: Fake) -> None:
    http, _ = fake
    assert await (await http.get("/")).text() == "Ollama is running"
    assert "version" in await (await http.get("/api/version")).json()
    tags = await (await http.get("/api/tags")).json()
    assert [m["name"] for m in tags["models"]] == ["fake-chat", "fake-embed"]


def _words(text: str) -> int:
    return len(text.split())


def _turn(role: str, words: int, tag: str) -> dict[str, str]:
    return {"role": role, "content": " ".join(f"{tag}{i}" for i in range(words))}


def test_fit_keeps_a_conversation_that_fits() -> None:
    messages = [_turn("system", 5, "s"), _turn("user", 5, "u")]
    assert fit_messages(messages, _words, 1000) == messages


def test_fit_drops_oldest_turns_then_trims_the_oldest_text_head() -> None:
    system, old, reply, last = (
        _turn("system", 10, "s"),
        _turn("user", 50, "o"),
        _turn("assistant", 50, "a"),
        _turn("user", 100, "u"),
    )
    budget = 80 + 2 * TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_FIXED
    fitted = fit_messages([system, old, reply, last], _words, budget)
    assert [m["role"] for m in fitted] == ["system", "user"]
    assert fitted[0] == system
    kept = fitted[1]["content"].split()
    assert len(kept) <= 70 and kept[-1] == "u99"
