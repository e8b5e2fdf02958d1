"""Memories of an older version, kept by qdrant-client's local mode, moved to the embedded engine.

Before the embedded engine, the embedded memory was qdrant-client's local mode under
`$AIMESH_DATA_DIR/qdrant`. The first time the new store is made, a collection found there is
copied into it, vectors and payloads as they are, and its folder renamed so it is not moved
twice. A log line says what was moved and where the old folder went.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from qdrant_client import AsyncQdrantClient

from aimesh.memory.client_store import ClientStore
from aimesh.memory.edge_store import EdgeStore

log = logging.getLogger(__name__)
BATCH = 1000


async def move_local_mode(legacy: Path, collection: str, into: EdgeStore, model: str) -> int:
    """Move `collection` from the local-mode folder `legacy` into `into`; the count moved."""
    if not (legacy / "collection" / collection).is_dir():
        return 0
    old = ClientStore(lambda: AsyncQdrantClient(path=str(legacy)), collection, indexed=False)
    try:
        _, owner = await old.owner(model)
        if owner != model:
            log.warning(
                "memory: %s holds vectors of %r, not of AIMESH_EMBED_MODEL=%r: not moved",
                legacy, owner, model,
            )  # fmt: skip
            return 0
        points = await old.points()
        if points:
            await into.prepare(len(points[0][1]), model)
            for start in range(0, len(points), BATCH):
                await into.upsert_many(points[start : start + BATCH])
    finally:
        await old.close()
    kept = legacy.with_name(f"{legacy.name}.moved-{time.strftime('%Y%m%d-%H%M%S')}")
    legacy.rename(kept)
    log.warning(
        "memory: moved %d memories of collection %r from qdrant-client's local store to the "
        "embedded engine in %s; the old folder is kept as %s",
        len(points), collection, into.folder, kept,
    )  # fmt: skip
    return len(points)
