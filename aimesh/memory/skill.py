"""MemorySkill: failures and lessons in Qdrant, found again by the similarity of their errors.

The store is Qdrant's embedded engine (aimesh.memory.edge_store) unless AIMESH_QDRANT_URL names
a server (aimesh.memory.client_store); both remember which embedding model filled them: vectors
of two models are not comparable, so a different model or dimension is refused with a clear
error (MemoryMismatchError) instead of returning nonsense neighbours.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import AsyncQdrantClient

from aimesh.memory.client_store import ClientStore
from aimesh.memory.edge_store import EdgeStore
from aimesh.memory.move import move_local_mode
from aimesh.memory.store import VectorStore

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

MAX_PROMPT_CODE = 600
VECTORS_KEPT = 256
"""Recent texts whose vectors are kept: about 1.5 MB of 384-dimension vectors."""
FAILURE = "failure"
LESSON = "lesson"
_NAMESPACE = uuid.UUID("5f0c1b7e-8a52-4c35-9b8e-4c0d7a1e2b11")


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
        store: VectorStore,
        embed: Embed,
        model: str,
        setup: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.store = store
        self._embed = embed
        self.model = model
        self._setup = setup  # once, before the store is first prepared (moving older memories)
        self._ready = False
        self._vectors: collections.OrderedDict[str, asyncio.Future[list[list[float]]]] = (
            collections.OrderedDict()
        )

    async def _embedded(self, text: str) -> list[float]:
        """The text's vector, computed once for texts seen lately.

        A failure's error text is embedded when it is stored, again as the fix attempt's recall
        query, and a third time when a passing fix stores its lesson: the same text, in the
        same worker (a cycle stays on one partition). The later ones, even while the first is
        still being computed, share its answer; a failed embedding is not kept.
        """
        pending = self._vectors.get(text)
        if pending is None:
            pending = asyncio.ensure_future(self._embed([text]))
            self._vectors[text] = pending
            pending.add_done_callback(lambda done: self._forget_failed(text, done))
            while len(self._vectors) > VECTORS_KEPT:
                self._vectors.popitem(last=False)
        else:
            self._vectors.move_to_end(text)
        (vector,) = await asyncio.shield(pending)
        return vector

    def _forget_failed(self, text: str, done: asyncio.Future[list[list[float]]]) -> None:
        if (done.cancelled() or done.exception() is not None) and self._vectors.get(text) is done:
            del self._vectors[text]

    async def _vector(self, text: str) -> list[float]:
        vector = await self._embedded(text)
        if not self._ready:
            if self._setup is not None:
                await self._setup()
                self._setup = None
            await self.store.prepare(len(vector), self.model)
            self._ready = True
        return vector

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
        await self.store.upsert(point_id, await self._vector(error or task), payload)
        return point_id

    async def recall(self, text: str, k: int, *, exclude_cycle: str = "") -> list[Memory]:
        """The k memories nearest to `text`; `exclude_cycle` leaves out one cycle's own ones,
        which that cycle's prompt already shows."""
        if k <= 0 or not text.strip():
            return []
        found = await self.store.nearest(await self._vector(text), k, exclude_cycle)
        return [
            Memory(
                kind=str(hit.payload.get("kind", "")),
                task=str(hit.payload.get("task", "")),
                code=str(hit.payload.get("code", "")),
                error=str(hit.payload.get("error", "")),
                score=hit.score,
                cycle_id=str(hit.payload.get("cycle_id", "")),
            )
            for hit in found
        ]

    async def count(self) -> dict[str, int]:
        """How many failures and lessons are stored (0 before the first one)."""
        return {kind: await self.store.count(kind) for kind in (FAILURE, LESSON)}

    async def close(self) -> None:
        await self.store.close()


def open_memory(
    embed: Embed,
    model: str,
    *,
    url: str | None,
    path: Path,
    collection: str = "aimesh_memory",
    legacy: Path | None = None,
) -> MemorySkill:
    """A Qdrant server when `url` is set, else the embedded engine in `path`/`collection`; a
    collection of an older version's local-mode store in `legacy` is moved in on first use."""
    if url:
        return MemorySkill(
            ClientStore(lambda: AsyncQdrantClient(url=url), collection), embed, model
        )
    store = EdgeStore(path / collection)
    setup = None
    if legacy is not None and not store.exists():

        async def setup() -> int:
            return await move_local_mode(legacy, collection, store, model)

    return MemorySkill(store, embed, model, setup)
