"""What MemorySkill needs of a vector store, so the embedded engine and a Qdrant server are one
interface: prepare for a model's vectors, store a point, find the nearest, count by kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

OWNER_FILE = "aimesh-memory.json"
"""In an embedded collection's folder: which embedding model, and dimension, filled it."""
INDEXED = ("cycle_id", "kind")
"""Payload fields every store indexes: recall leaves out one cycle's own memories, counts go by
kind, and neither may scan every point."""


class MemoryMismatchError(RuntimeError):
    """The store was filled by another embedding model or dimension."""


def mismatch(where: str, size: int, owner: str, model: str, dimension: int) -> MemoryMismatchError:
    return MemoryMismatchError(
        f"memory {where} holds {size}-dimension vectors of {owner!r}, but "
        f"AIMESH_EMBED_MODEL={model!r} gives {dimension}: use the same model, or another "
        "collection (AIMESH_MEMORY_COLLECTION)"
    )


@dataclass(frozen=True)
class Hit:
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    async def prepare(self, dimension: int, model: str) -> None:
        """Create the store for `model`'s vectors, or check that it holds them
        (MemoryMismatchError when it does not)."""

    async def upsert(self, point_id: str, vector: list[float], payload: dict[str, Any]) -> None:
        """Store one point; the same id again replaces it."""

    async def nearest(self, vector: list[float], k: int, exclude_cycle: str) -> list[Hit]:
        """The k points nearest to `vector`, leaving out `exclude_cycle`'s own ones."""

    async def count(self, kind: str) -> int:
        """Points of one kind (0 before the store exists)."""

    async def close(self) -> None: ...
