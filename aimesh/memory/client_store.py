"""A Qdrant collection through qdrant-client: a Qdrant server (AIMESH_QDRANT_URL), or the
client's local mode, which only the memory bench (as the baseline) and the move of an older
embedded memory still open.

On a server the collection gets keyword indexes on `cycle_id` and `kind`, so leaving out a
cycle's own memories and counting by kind stay fast as memories pile up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from aimesh.memory.store import INDEXED, Hit, mismatch


def _match(field: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


class ClientStore:
    def __init__(
        self, connect: Callable[[], AsyncQdrantClient], collection: str, indexed: bool = True
    ) -> None:
        self._connect = connect
        self._indexed = indexed  # local mode has no payload indexes (and warns about them)
        self._connected: AsyncQdrantClient | None = None
        self.collection = collection
        self._ready = False

    @property
    def client(self) -> AsyncQdrantClient:
        """Connect on first use, so a locked or unreachable store fails a call, not a start-up."""
        if self._connected is None:
            self._connected = self._connect()
        return self._connected

    async def prepare(self, dimension: int, model: str) -> None:
        if self._ready:
            return
        if not await self.client.collection_exists(self.collection):
            await self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                metadata={"embed_model": model, "dimension": dimension},
            )
        info = await self.client.get_collection(self.collection)
        size, owner = self._owner_of(info, model)
        if (size, owner) != (dimension, model):
            raise mismatch(f"collection {self.collection!r}", size, owner, model, dimension)
        missing = set(INDEXED) - set(info.payload_schema or {}) if self._indexed else set()
        for field in sorted(missing):
            await self.client.create_payload_index(
                self.collection, field, field_schema=models.PayloadSchemaType.KEYWORD
            )
        self._ready = True

    @staticmethod
    def _owner_of(info: models.CollectionInfo, default_model: str) -> tuple[int, str]:
        """(dimension, embedding model) of a collection; one made before the model was
        recorded counts as `default_model`'s."""
        size = info.config.params.vectors.size or 0  # type: ignore[union-attr]
        return size, str((info.config.metadata or {}).get("embed_model", default_model))

    async def owner(self, default_model: str) -> tuple[int, str]:
        """(dimension, embedding model) of the existing collection."""
        info = await self.client.get_collection(self.collection)
        return self._owner_of(info, default_model)

    async def upsert(self, point_id: str, vector: list[float], payload: dict[str, Any]) -> None:
        point = models.PointStruct(id=point_id, vector=vector, payload=payload)
        await self.client.upsert(self.collection, points=[point])

    async def nearest(self, vector: list[float], k: int, exclude_cycle: str) -> list[Hit]:
        others = (
            models.Filter(must_not=[_match("cycle_id", exclude_cycle)]) if exclude_cycle else None
        )
        found = await self.client.query_points(
            self.collection, query=vector, limit=k, with_payload=True, query_filter=others
        )
        return [Hit(float(p.score), dict(p.payload)) for p in found.points if p.payload]

    async def count(self, kind: str) -> int:
        if not await self.client.collection_exists(self.collection):
            return 0
        only = models.Filter(must=[_match("kind", kind)])
        return (await self.client.count(self.collection, count_filter=only)).count

    async def points(self) -> list[tuple[str, list[float], dict[str, Any]]]:
        """Every point with its vector and payload (to move them to another store)."""
        found: list[tuple[str, list[float], dict[str, Any]]] = []
        offset = None
        while True:
            batch, offset = await self.client.scroll(
                self.collection, limit=1000, offset=offset, with_payload=True, with_vectors=True
            )
            for p in batch:
                found.append((str(p.id), list(p.vector), dict(p.payload or {})))  # type: ignore[arg-type]
            if offset is None:
                return found

    async def close(self) -> None:
        if self._connected is not None:
            await self._connected.close()
            self._connected = None
