"""The embedded memory: Qdrant's own engine in this process (PyPI `qdrant-edge-py`), one folder.

Why not qdrant-client's local mode, the embedded default before: it keeps points in Python and
scans every one of them for each query, so recall slowed down with every failure the mesh
learned from (with the own-cycle filter, p50 343 ms at 10,000 memories). Qdrant Edge runs
Qdrant's segment engine natively, with keyword indexes on `cycle_id` and `kind`, and answered
the same filtered query in milliseconds at 100,000 (bench/memory_bench.py).

The engine is synchronous and each call runs in a thread, but the binding keeps the GIL while
it works: the event loop waits for every call. At 100,000 memories a filtered query scans every
point (no HNSW index: Edge builds one only in `optimize()`), 14-31 ms, and the loop stood still
21 ms (p50) per query. `optimize()` made the same query 3.6 ms (p95) but held the GIL for its
whole run, 64 s at 100,000: it cannot run inside a worker. It keeps a write-ahead log, so a
killed worker loses no memory it stored. One process holds the folder at a time (workers on one
machine need their own AIMESH_DATA_DIR, or a Qdrant server).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    MatchValue,
    PayloadSchemaType,
    Point,
    Query,
    QueryRequest,
    UpdateOperation,
)

from aimesh.memory.store import INDEXED, Hit, mismatch

OWNER_FILE = "aimesh-memory.json"  # which embedding model filled the folder


def _match(field: str, value: str) -> FieldCondition:
    return FieldCondition(key=field, match=MatchValue(value))


class EdgeStore:
    """One collection as one folder of Qdrant Edge."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._shard: EdgeShard | None = None
        self._owner: tuple[int, str] = (0, "")
        self._opening = asyncio.Lock()  # one open at a time: a second would find the folder locked

    def exists(self) -> bool:
        return (self.folder / OWNER_FILE).is_file()

    def _owner_on_disk(self) -> tuple[int, str] | None:
        """(dimension, embedding model) of the vectors in the folder; None before the first."""
        if not self.exists():
            return None
        owner = json.loads((self.folder / OWNER_FILE).read_text())
        return int(owner["dimension"]), str(owner["embed_model"])

    def _open(self, dimension: int, model: str) -> EdgeShard:
        owner = self._owner_on_disk()
        if owner is not None:
            if owner != (dimension, model):
                raise mismatch(f"in {self.folder}", *owner, model, dimension)
            return EdgeShard.load(str(self.folder))
        config = EdgeConfig(vectors=EdgeVectorParams(size=dimension, distance=Distance.Cosine))
        shard = EdgeShard.create(str(self.folder), config)
        for field in INDEXED:
            shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
        owner_file = self.folder / OWNER_FILE
        owner_file.write_text(json.dumps({"embed_model": model, "dimension": dimension}))
        return shard

    def _ready(self) -> EdgeShard:
        if self._shard is None:
            raise RuntimeError("the memory store is used before prepare()")
        return self._shard

    async def prepare(self, dimension: int, model: str) -> None:
        async with self._opening:
            if self._shard is None:
                self._shard = await asyncio.to_thread(self._open, dimension, model)
                self._owner = (dimension, model)
        if self._owner != (dimension, model):
            raise mismatch(f"in {self.folder}", *self._owner, model, dimension)

    async def upsert(self, point_id: str, vector: list[float], payload: dict[str, Any]) -> None:
        operation = UpdateOperation.upsert_points([Point(point_id, vector, payload)])
        await asyncio.to_thread(self._ready().update, operation)

    async def upsert_many(self, points: list[tuple[str, list[float], dict[str, Any]]]) -> None:
        operation = UpdateOperation.upsert_points([Point(*point) for point in points])
        await asyncio.to_thread(self._ready().update, operation)

    async def nearest(self, vector: list[float], k: int, exclude_cycle: str) -> list[Hit]:
        others = Filter(must_not=[_match("cycle_id", exclude_cycle)]) if exclude_cycle else None
        request = QueryRequest(
            limit=k, query=Query.Nearest(vector), filter=others, with_payload=True
        )
        found = await asyncio.to_thread(self._ready().query, request)
        return [Hit(float(p.score), dict(p.payload)) for p in found if p.payload]

    async def count(self, kind: str) -> int:
        if self._shard is None:
            owner = self._owner_on_disk()
            if owner is None:
                return 0
            await self.prepare(*owner)
        request = CountRequest(exact=True, filter=Filter(must=[_match("kind", kind)]))
        return int(await asyncio.to_thread(self._ready().count, request))

    async def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            await asyncio.to_thread(shard.flush)
            await asyncio.to_thread(shard.close)
