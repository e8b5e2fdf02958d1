"""An embedded server speaking Ollama's HTTP API.

Agents always use the official `ollama` client; when no real Ollama is reachable this server
stands in for it, so agent code never branches on where its model lives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from aimesh.llm.backends import (
    DEFAULT_CONTEXT,
    ChatBackend,
    Completion,
    Describable,
    E5Embedder,
    EmbedBackend,
    ModelInfo,
    TokenCounter,
)
from aimesh.llm.catalog import DEFAULT_PARALLEL, UnknownModel
from aimesh.llm.chat_models import ChatModels
from aimesh.llm.model_store import ModelNotInstalled
from aimesh.llm.pull import pull_events

log = logging.getLogger(__name__)
OLLAMA_VERSION = "0.6.3"
DEFAULT_TEMPERATURE = 0.2
"""Ollama's own default (0.8) makes a 135M model ramble; Modelfiles of small models lower it."""

_CHAT_KEY = web.AppKey("chat", ChatModels)
_EMBED_KEY = web.AppKey("embedder", EmbedBackend)
_POOLS_KEY = web.AppKey("pools", dict[str, ThreadPoolExecutor])
_NDJSON = "application/x-ndjson"
CHAT_CALLS_AT_ONCE = 16
"""Chat calls handed to the backends together; a llama.cpp model batches up to its `parallel`
requests and queues the rest, so more threads here only wait there."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class ApiError(Exception):
    """Carries an HTTP status and the `{"error": ...}` message Ollama would send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _GenParams:
    schema: dict[str, Any] | None
    json_mode: bool
    max_tokens: int
    temperature: float
    seed: int | None
    stream: bool


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _matches(requested: str, served: str) -> bool:
    """Ollama treats a bare name as `name:latest`."""
    return requested == served or (":" not in served and requested == f"{served}:latest")


def _not_found(model: str) -> ApiError:
    return ApiError(404, f'model "{model}" not found, try pulling it first')


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _model_name(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required")
    return model


def _typed(options: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = options.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ApiError(400, f'option "{key}" has the wrong type')
    return value


def _gen_params(body: dict[str, Any]) -> _GenParams:
    fmt = body.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        raise ApiError(400, 'invalid format: expected "json" or a JSON schema object')
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "options must be an object")
    num_predict = _typed(options, "num_predict", int)
    temperature = _typed(options, "temperature", (int, float))
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean")
    return _GenParams(
        schema=fmt if isinstance(fmt, dict) else None,
        json_mode=fmt == "json",
        max_tokens=-1 if num_predict is None else num_predict,
        temperature=DEFAULT_TEMPERATURE if temperature is None else float(temperature),
        seed=_typed(options, "seed", int),
        stream=stream,
    )


def _chat_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    raw = body.get("messages") or []
    if not isinstance(raw, list):
        raise ApiError(400, "messages must be a list")
    messages = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise ApiError(400, "each message needs a string role")
        content = item.get("content") or ""
        if not isinstance(content, str):
            raise ApiError(400, "message content must be a string")
        messages.append({"role": item["role"], "content": content})
    return messages


def _prompt_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    prompt, system = body.get("prompt") or "", body.get("system") or ""
    if not isinstance(prompt, str) or not isinstance(system, str):
        raise ApiError(400, "prompt and system must be strings")
    if not prompt:
        return []
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


async def _off_loop(
    request: web.Request, lane: str, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run blocking model work on the lane's own threads.

    One lane per kind of model keeps the event loop free and stops a queue of chats from
    starving embeddings of pool threads. The embed lane has one thread (the embedder is not
    re-entrant); the chat lane has several, since a chat model batches concurrent calls.
    """
    pool = request.app[_POOLS_KEY][lane]
    return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args, **kwargs))


def _chat_backend(request: web.Request, model: str) -> ChatBackend:
    if _matches(model, request.app[_EMBED_KEY].name):
        raise ApiError(400, f'"{model}" does not support generate')
    try:
        return request.app[_CHAT_KEY].get(model)
    except UnknownModel:
        raise _not_found(model) from None
    except ModelNotInstalled as exc:
        raise ApiError(404, f'model "{model}" not found, try pulling it first: {exc}') from None


def _embed_backend(request: web.Request, model: str) -> EmbedBackend:
    embedder = request.app[_EMBED_KEY]
    if _matches(model, embedder.name):
        return embedder
    if any(_matches(model, name) for name in request.app[_CHAT_KEY].names()):
        raise ApiError(400, f'"{model}" does not support embeddings')
    raise _not_found(model)


def _stats(done: Completion, total_ns: int) -> dict[str, Any]:
    return {
        "done": True,
        "done_reason": done.done_reason,
        "total_duration": total_ns,
        "load_duration": done.load_ns,
        "prompt_eval_count": done.prompt_tokens,
        "prompt_eval_duration": done.prompt_eval_ns,
        "eval_count": done.completion_tokens,
        "eval_duration": done.eval_ns,
    }


async def _generation(
    request: web.Request,
    *,
    chat_api: bool,
    to_messages: Callable[[dict[str, Any]], list[dict[str, str]]],
) -> web.StreamResponse:
    """Shared body of /api/chat and /api/generate, which differ only in where the text goes."""
    start = time.perf_counter_ns()
    body = await _body(request)
    model = _model_name(body)
    params = _gen_params(body)
    messages = to_messages(body)
    backend = _chat_backend(request, model)
    if not messages:
        done = Completion("", 0, 0, "load")
    else:
        done = await _off_loop(
            request,
            "chat",
            backend.complete,
            messages,
            schema=params.schema,
            json_mode=params.json_mode,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            seed=params.seed,
        )
    total_ns = time.perf_counter_ns() - start
    log.info(
        "%s: %d prompt tokens in %.2f s, %d tokens in %.2f s, %.2f s in all",
        model, done.prompt_tokens, done.prompt_eval_ns / 1e9, done.completion_tokens,
        done.eval_ns / 1e9, total_ns / 1e9,
    )  # fmt: skip

    def part(text: str) -> dict[str, Any]:
        head: dict[str, Any] = {"model": model, "created_at": _now()}
        if chat_api:
            head["message"] = {"role": "assistant", "content": text}
        else:
            head["response"] = text
        return head

    if not params.stream:
        return web.json_response({**part(done.text), **_stats(done, total_ns)})
    chunks = [{**part(done.text), "done": False}] if done.text else []
    chunks.append({**part(""), **_stats(done, total_ns)})
    response = web.StreamResponse(headers={"Content-Type": _NDJSON})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(json.dumps(chunk).encode() + b"\n")
    await response.write_eof()
    return response


async def _chat(request: web.Request) -> web.StreamResponse:
    return await _generation(request, chat_api=True, to_messages=_chat_messages)


async def _generate(request: web.Request) -> web.StreamResponse:
    return await _generation(request, chat_api=False, to_messages=_prompt_messages)


async def _embed(request: web.Request) -> web.Response:
    start = time.perf_counter_ns()
    body = await _body(request)
    model = _model_name(body)
    raw = body.get("input", "")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ApiError(400, "input must be a string or a list of strings")
    embedder = _embed_backend(request, model)
    vectors = await _off_loop(request, "embed", embedder.embed, texts) if texts else []
    tokens = 0
    if isinstance(embedder, TokenCounter) and texts:
        tokens = await _off_loop(request, "embed", embedder.count_tokens, texts)
    return web.json_response(
        {
            "model": model,
            "embeddings": vectors,
            "total_duration": time.perf_counter_ns() - start,
            "load_duration": 0,
            "prompt_eval_count": tokens,
        }
    )


async def _embeddings(request: web.Request) -> web.Response:
    body = await _body(request)
    embedder = _embed_backend(request, _model_name(body))
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        raise ApiError(400, "prompt must be a string")
    vectors = await _off_loop(request, "embed", embedder.embed, [prompt]) if prompt else [[]]
    return web.json_response({"embedding": vectors[0]})


def _tag(backend: ChatBackend | EmbedBackend) -> dict[str, Any]:
    info = backend.describe() if isinstance(backend, Describable) else ModelInfo()
    return {
        "name": backend.name,
        "model": backend.name,
        "modified_at": info.modified_at,
        "size": info.size,
        "digest": info.digest,
        "details": {
            "parent_model": "",
            "format": info.format,
            "family": info.family,
            "families": [info.family] if info.family else None,
            "parameter_size": info.parameter_size,
            "quantization_level": info.quantization_level,
        },
    }


async def _tags(request: web.Request) -> web.Response:
    """What is installed: every chat model whose packages are present, and the embedder."""

    def tags() -> list[dict[str, Any]]:
        backends = [*request.app[_CHAT_KEY].installed(), request.app[_EMBED_KEY]]
        return [_tag(backend) for backend in backends]

    return web.json_response({"models": await asyncio.to_thread(tags)})


async def _pull(request: web.Request) -> web.StreamResponse:
    """Ollama's /api/pull: install the model's pinned packages, join and check them, as NDJSON
    progress (`status`, and `digest`/`total`/`completed` per part), or one answer unstreamed."""
    body = await _body(request)
    model = body.get("model") or body.get("name")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required")
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean")
    models = request.app[_CHAT_KEY]
    if not models.pulls:
        raise ApiError(400, "this server serves a fixed set of models and pulls none")
    events = pull_events(model, models.models_dir, lock=models.pull_lock)
    if not stream:
        last: dict[str, Any] = {}
        async for event in events:
            if "error" in event:
                raise ApiError(500, event["error"])
            last = event
        return web.json_response(last)
    response = web.StreamResponse(headers={"Content-Type": _NDJSON})
    await response.prepare(request)
    async for event in events:
        await response.write(json.dumps(event).encode() + b"\n")
    await response.write_eof()
    return response


async def _root(_: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


async def _version(_: web.Request) -> web.Response:
    return web.json_response({"version": OLLAMA_VERSION})


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as `{"error": ...}`, the only shape the ollama client understands."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception as exc:
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)


async def _shutdown_pools(app: web.Application) -> None:
    """Drop queued model calls at once, so a stop waits for one generation, not the queue."""
    for pool in app[_POOLS_KEY].values():
        pool.shutdown(wait=False, cancel_futures=True)


def build_app(chat: ChatModels | ChatBackend, embedder: EmbedBackend) -> web.Application:
    """Wire the chat models (or one fixed chat backend) and the embedder behind Ollama's routes."""
    app = web.Application(middlewares=[_errors], client_max_size=32 * 1024 * 1024)
    app[_CHAT_KEY] = chat if isinstance(chat, ChatModels) else ChatModels.fixed(chat)
    app[_EMBED_KEY] = embedder
    app[_POOLS_KEY] = {
        lane: ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"ollama-{lane}")
        for lane, width in (("chat", CHAT_CALLS_AT_ONCE), ("embed", 1))
    }
    app.on_shutdown.append(_shutdown_pools)
    app.router.add_get("/", _root)
    app.router.add_get("/api/version", _version)
    app.router.add_get("/api/tags", _tags)
    app.router.add_post("/api/chat", _chat)
    app.router.add_post("/api/generate", _generate)
    app.router.add_post("/api/embed", _embed)
    app.router.add_post("/api/embeddings", _embeddings)
    app.router.add_post("/api/pull", _pull)
    return app


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving in the running loop; the caller owns `runner.cleanup()`."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _serve_until_signalled(app: web.Application, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await start_server(app, host, port)
    print(f"aimesh ollama-compatible server on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point: `python -m aimesh.llm.server --port 11434`; one log line per generation."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument(
        "--n-ctx", type=int, default=DEFAULT_CONTEXT, help="context window of the chat models"
    )
    parser.add_argument(
        "--models-dir", type=Path, default=Path(".aimesh/models"), help="where models are joined"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="llama.cpp threads (default: the cores other processes leave free)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        help="requests one model decodes at once, in shared batches",
    )
    args = parser.parse_args(argv)
    for flag in ("threads", "parallel", "n_ctx"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    models = ChatModels(
        args.models_dir, n_ctx=args.n_ctx, n_threads=args.threads, parallel=args.parallel
    )
    app = build_app(models, E5Embedder())
    asyncio.run(_serve_until_signalled(app, args.host, args.port))
    # A generation already running in a worker thread cannot be interrupted, and the interpreter
    # would join that thread at exit, holding the CPU for minutes on a busy machine: leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
