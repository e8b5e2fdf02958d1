"""MemorySkill: failures and lessons in Qdrant, found again by the similarity of their errors.

The collection remembers which embedding model filled it: vectors of two models are not
comparable, so a different model or dimension is refused with a clear error instead of
returning nonsense neighbours.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import AsyncQdrantClient, models

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

MAX_PROMPT_CODE = 600
FAILURE = "failure"
LESSON = "lesson"
_NAMESPACE = uuid.UUID("5f0c1b7e-8a52-4c35-9b8e-4c0d7a1e2b11")


class MemoryMismatchError(RuntimeError):
    """The collection was filled by another embedding model or dimension."""


@dataclass(frozen=True)
class Memory:
    kind: str
    task: str
    code: str
    error: str
    score: float
    cycle_id: str

    def as_prompt(self) -> str:
        """How a memory reads inside the Consumer's prompt: short, since every token of it is
        paid for on each attempt (a small model's context and speed are both scarce)."""
        code = self.code if len(self.code) <= MAX_PROMPT_CODE else self.code[:MAX_PROMPT_CODE] + "…"
        if self.kind == LESSON:
            return f"This error: {self.error[:300]}\nwas fixed by:\n```python\n{code}\n```"
        return f"This code:\n```python\n{code}\n```\nfailed with: {self.error[:300]}"


class MemorySkill:
    """Store failures and lessons; recall the k nearest to an error or a task."""

    def __init__(
        self,
        connect: Callable[[], AsyncQdrantClient],
        embed: Embed,
        model: str,
        collection: str,
    ) -> None:
        self._connect = connect
        self._connected: AsyncQdrantClient | None = None
        self._embed = embed
        self.model = model
        self.collection = collection
        self._ready = False

    @property
    def _client(self) -> AsyncQdrantClient:
        """Connect on first use, so a locked or unreachable store fails a call, not a start-up."""
        if self._connected is None:
            self._connected = self._connect()
        return self._connected

    async def _vector(self, text: str) -> list[float]:
        (vector,) = await self._embed([text])
        await self._ensure_collection(len(vector))
        return vector

    async def _ensure_collection(self, dimension: int) -> None:
        if self._ready:
            return
        if not await self._client.collection_exists(self.collection):
            await self._client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                metadata={"embed_model": self.model, "dimension": dimension},
            )
        else:
            info = await self._client.get_collection(self.collection)
            size = info.config.params.vectors.size  # type: ignore[union-attr]
            owner = (info.config.metadata or {}).get("embed_model", self.model)
            if size != dimension or owner != self.model:
                raise MemoryMismatchError(
                    f"memory collection {self.collection!r} holds {size}-dimension vectors of "
                    f"{owner!r}, but AIMESH_EMBED_MODEL={self.model!r} gives {dimension}: use the "
                    "same model, or another collection (AIMESH_MEMORY_COLLECTION)"
                )
        self._ready = True

    async def remember(
        self, kind: str, *, cycle_id: str, attempt: int, task: str, code: str, error: str
    ) -> str:
        """Store one memory under an id made of (kind, cycle, attempt): redelivery is a no-op."""
        point_id = str(uuid.uuid5(_NAMESPACE, f"{kind}:{cycle_id}:{attempt}"))
        payload: dict[str, Any] = {
            "kind": kind,
            "cycle_id": cycle_id,
            "attempt": attempt,
            "task": task[:4000],
            "code": code[:8000],
            "error": error[:2000],
            "embed_model": self.model,
        }
        vector = await self._vector(error or task)
        await self._client.upsert(
            self.collection,
            points=[models.PointStruct(id=point_id, vector=vector, payload=payload)],
        )
        return point_id

    async def recall(self, text: str, k: int, *, exclude_cycle: str = "") -> list[Memory]:
        """The k memories nearest to `text`; `exclude_cycle` leaves out one cycle's own ones,
        which that cycle's prompt already shows."""
        if k <= 0 or not text.strip():
            return []
        vector = await self._vector(text)
        others = None
        if exclude_cycle:
            own = models.FieldCondition(
                key="cycle_id", match=models.MatchValue(value=exclude_cycle)
            )
            others = models.Filter(must_not=[own])
        found = await self._client.query_points(
            self.collection, query=vector, limit=k, with_payload=True, query_filter=others
        )
        return [
            Memory(
                kind=str(p.payload.get("kind", "")),
                task=str(p.payload.get("task", "")),
                code=str(p.payload.get("code", "")),
                error=str(p.payload.get("error", "")),
                score=float(p.score),
                cycle_id=str(p.payload.get("cycle_id", "")),
            )
            for p in found.points
            if p.payload
        ]

    async def count(self) -> dict[str, int]:
        """How many failures and lessons are stored (0 before the first one)."""
        if not await self._client.collection_exists(self.collection):
            return {FAILURE: 0, LESSON: 0}
        result = {}
        for kind in (FAILURE, LESSON):
            kind_filter = models.Filter(
                must=[models.FieldCondition(key="kind", match=models.MatchValue(value=kind))]
            )
            counted = await self._client.count(self.collection, count_filter=kind_filter)
            result[kind] = counted.count
        return result

    async def close(self) -> None:
        if self._connected is not None:
            await self._connected.close()


def open_memory(
    embed: Embed,
    model: str,
    *,
    url: str | None,
    path: Path,
    collection: str = "aimesh_memory",
) -> MemorySkill:
    """A Qdrant server when `url` is set, else qdrant-client's local mode persisted under `path`."""

    def connect() -> AsyncQdrantClient:
        if url:
            return AsyncQdrantClient(url=url)
        path.mkdir(parents=True, exist_ok=True)
        return AsyncQdrantClient(path=str(path))

    return MemorySkill(connect, embed, model, collection)
