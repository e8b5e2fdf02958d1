"""The one way agents reach a language model: the official `ollama` AsyncClient, wrapped.

The client's HTTP goes through aiohttp (`httpx-aiohttp`'s transport for httpx, which `ollama` is
built on): with an instant model under `bench/mesh_throughput.py`, a chat call cost the caller
about 1.4 ms of CPU through httpx's own connection pool and 0.8 ms through aiohttp, and the LLM
calls were a third of a worker's busy time. Requests and answers are the same; a refused
connection reads `ConnectTimeout` (the transport's name for every failure to connect) and is
retried as before, and so is a reply aiohttp cannot parse.

The wrapper adds what every agent needs and Ollama's client leaves to callers: a latency and token
account per call, a bounded retry with backoff while the server is unreachable (reported once when
the outage starts and once when it ends, with its length), and one error type.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import ollama
from httpx_aiohttp import AiohttpTransport

DEFAULT_HOST = "http://127.0.0.1:11434"
logging.getLogger("httpx").setLevel(logging.WARNING)
"""httpx logs every request at INFO: a fifth of a worker's log lines, and about 2% of its time
under bench/mesh_throughput.py. Failures still reach the log through this client's errors, and
the status view counts the calls (`LLM.calls`)."""


def _session() -> aiohttp.ClientSession:
    """The connection pool, made on the first call (in the loop that uses it). `trust_env`: the
    proxy variables apply as they did through httpx, which ignores them beside a transport."""
    return aiohttp.ClientSession(trust_env=True)


class LLMError(RuntimeError):
    """The model could not be reached, or refused the request."""


# Told "unreachable" (with the error) when an outage starts, "recovered" (with its seconds) after.
OutageReport = Callable[[str, float, str], Awaitable[None]]


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int

    def json(self) -> Any:
        """Parse the answer as JSON; raise ValueError with the start of the text when it isn't."""
        try:
            return json.loads(self.text, strict=False)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg}): {self.text[:200]!r}") from None


class LLM:
    """Chat and embeddings through Ollama's HTTP API, wherever that API is served."""

    def __init__(
        self,
        host: str | None,
        chat_model: str,
        embed_model: str,
        *,
        timeout: float = 300.0,
        retry_for: float = 60.0,
        on_outage: OutageReport | None = None,
    ) -> None:
        self.host = host or DEFAULT_HOST
        self.chat_model = chat_model
        self.embed_model = embed_model
        self.retry_for = retry_for
        self.on_outage = on_outage
        self._down_since: float | None = None
        self._client = ollama.AsyncClient(
            host=self.host, timeout=timeout, transport=AiohttpTransport(client=_session)
        )
        self.calls: collections.Counter[str] = collections.Counter()
        """Answered calls by kind (`chat`, `embed`), for the status view."""

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.2,
        model: str | None = None,
    ) -> ChatResult:
        """One chat call to `model` (default: the chat model)."""
        started = time.perf_counter()
        model = model or self.chat_model
        response = await self._retrying(
            self._client.chat,
            model=model,
            messages=messages,
            format=schema,
            options={"num_predict": max_tokens, "temperature": temperature},
        )
        self.calls["chat"] += 1
        return ChatResult(
            text=response.message.content or "",
            model=response.model or model,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=response.prompt_eval_count or 0,
            completion_tokens=response.eval_count or 0,
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        response = await self._retrying(self._client.embed, model=self.embed_model, input=texts)
        self.calls["embed"] += 1
        return [list(vector) for vector in response.embeddings]

    async def close(self) -> None:
        """Close the pooled connections (an open aiohttp session warns when it is collected)."""
        await self._client.close()

    async def _retrying(self, call: Any, **kwargs: Any) -> Any:
        """Retry only unreachability (a server restarting); a refusal is final at once."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.5
        while True:
            try:
                answer = await call(**kwargs)
            except ollama.ResponseError as exc:
                raise LLMError(
                    f"{kwargs.get('model')}: {exc.error} (HTTP {exc.status_code})"
                ) from exc
            except (ConnectionError, httpx.TransportError, aiohttp.ClientError) as exc:
                await self._outage_started(exc)
                if time.monotonic() + delay > deadline:
                    raise LLMError(f"no LLM answered at {self.host}: {exc!r}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
            except Exception as exc:  # e.g. a reply the client cannot parse: still the LLM's fault
                raise LLMError(f"{kwargs.get('model')}: {type(exc).__name__}: {exc}") from exc
            else:
                await self._outage_ended()
                return answer

    async def _outage_started(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            if self.on_outage:
                await self.on_outage("unreachable", 0.0, f"{self.host}: {exc!r}"[:300])

    async def _outage_ended(self) -> None:
        if self._down_since is not None:
            seconds, self._down_since = time.monotonic() - self._down_since, None
            if self.on_outage:
                await self.on_outage("recovered", seconds, self.host)
