"""The embedded memory's shards on disk: a small unindexed shard that takes writes, and indexed
parts built beside it, so a query never scans more than a few thousand points one by one.

Why tiers: Qdrant Edge builds an HNSW index only in `optimize()`, which holds the GIL for its
whole run (64 s at 100,000 memories), and without one a filtered query scans every point (14-31
ms at 100,000, growing with every failure the mesh stores). So writes go to a `fresh` shard;
when it holds `seal_at` points it is sealed (read-only) and a new one takes the writes, and
another process (aimesh.memory.index_builder) copies the sealed shard, with the youngest parts
of a size no larger than it, into one part and indexes it. The part then replaces its inputs.
Parts merge like a binary counter (a part of S points merges with the next when that one is no
larger), so N memories live in about log2(N / seal_at) parts, each point is re-indexed about as
many times, and a query asks each part and the shards not yet indexed, and keeps the best k.

`tiers.json` lists the shards in service; anything else in the folder is an unfinished build,
removed on open. A point id is in one shard only: writing an id again deletes it from the older
shards (a delete made after a build copied its inputs is made again on the part it installs).
This module is synchronous and single-threaded: aimesh.memory.edge_server runs it and the builds.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
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

from aimesh.memory.store import INDEXED, Hit

MANIFEST = "tiers.json"
LOCK = "engine.lock"
SEAL_AT = 8192
"""Points in the fresh shard before it is sealed and indexed: a plain scan of 8,192 384-dim
points takes about 1 ms, and indexing them about 3 s in the builder."""
_SINGLE_SHARD = ("wal", "segments", "edge_config.json")
"""What the previous version kept directly in the collection folder: one shard, no tiers."""

log = logging.getLogger(__name__)

PointData = tuple[str, list[float], dict[str, Any]]


def match(field_name: str, value: str) -> FieldCondition:
    return FieldCondition(key=field_name, match=MatchValue(value))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`, on disk before the rename: a crash leaves the old or new."""
    temporary = path.with_name(path.name + ".new")
    with open(temporary, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def create_shard(folder: Path, dimension: int, **config: Any) -> EdgeShard:
    """An empty shard with the payload indexes every store keeps (store.INDEXED)."""
    vectors = EdgeVectorParams(size=dimension, distance=Distance.Cosine)
    shard = EdgeShard.create(str(folder), EdgeConfig(vectors=vectors, **config))
    for name in INDEXED:
        shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Keyword))
    return shard


@dataclass
class Build:
    """One part to make: `inputs` (oldest first) become `output` once it is indexed."""

    inputs: list[str]
    output: str
    deleted_since_copy: set[str] = field(default_factory=set)


class FolderInUseError(RuntimeError):
    """Another process serves the folder."""


class Tiers:
    """The shards of one collection folder, in service in this process."""

    def __init__(self, folder: Path, dimension: int, seal_at: int = SEAL_AT) -> None:
        self.folder = folder
        self.dimension = dimension
        self.seal_at = seal_at
        self._shards: dict[str, EdgeShard] = {}
        self.parts: list[tuple[str, int]] = []  # (name, points), oldest first
        self.sealed: list[str] = []  # full fresh shards waiting to be indexed, oldest first
        self.fresh = ""
        self._next = 0
        self.build: Build | None = None
        self._lock = self._take_folder()
        try:
            self._open()
        except BaseException:
            os.close(self._lock)
            raise

    # -- the folder ----------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        name = f"{prefix}-{self._next:06d}"
        self._next += 1
        return name

    def _take_folder(self) -> int:
        """Lock the folder before anything in it is touched: a second engine (one still
        closing, say) would otherwise remove the first one's part being built as debris."""
        lock = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise FolderInUseError(
                f"memory folder {self.folder} is in use by another process: one worker per "
                "AIMESH_DATA_DIR, or a Qdrant server (AIMESH_QDRANT_URL) for several"
            ) from None
        return lock

    def _open(self) -> None:
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            self._adopt_single_shard()
        if manifest.is_file():
            listed = json.loads(manifest.read_text())
            self.parts = [(str(name), int(size)) for name, size in listed["parts"]]
            self.sealed = [str(name) for name in listed["sealed"]]
            self.fresh = str(listed["fresh"])
            self._next = int(listed["next"])
        else:
            self.fresh = self._name("fresh")
        self._remove_unlisted()
        self._drop_missing()
        for name in self.in_service():
            path = self.folder / name
            self._shards[name] = (
                EdgeShard.load(str(path)) if path.is_dir() else create_shard(path, self.dimension)
            )
        self._save()
        if self._shards[self.fresh].count(CountRequest(exact=True)) >= self.seal_at:
            self._seal()  # an adopted shard, or one filled before `seal_at` was lowered

    def _adopt_single_shard(self) -> None:
        """Move the previous version's one shard into the first fresh shard, keeping its points
        (the write-ahead log first: a move cut short is finished on the next open)."""
        if not any((self.folder / entry).exists() for entry in _SINGLE_SHARD):
            return
        target = self.folder / "fresh-000000"
        target.mkdir(exist_ok=True)
        for entry in _SINGLE_SHARD:
            if (self.folder / entry).exists():
                os.replace(self.folder / entry, target / entry)
        self.fresh, self._next = target.name, 1
        self._save()
        log.warning(
            "memory: moved %s's single shard into %s; it is indexed in the background",
            self.folder,
            target.name,
        )

    def _drop_missing(self) -> None:
        """A listed part or sealed shard whose folder is gone cannot be made again: say so."""
        listed = [name for name, _ in self.parts] + self.sealed
        missing = {name for name in listed if not (self.folder / name).is_dir()}
        for name in sorted(missing):
            log.error("memory: %s is missing from %s; its memories are lost", name, self.folder)
        self.parts = [(name, size) for name, size in self.parts if name not in missing]
        self.sealed = [name for name in self.sealed if name not in missing]

    def _remove_unlisted(self) -> None:
        listed = set(self.in_service())
        for path in self.folder.iterdir():
            if path.is_dir() and path.name not in listed:
                shutil.rmtree(path, ignore_errors=True)

    def _save(self) -> None:
        listed = {
            "parts": self.parts,
            "sealed": self.sealed,
            "fresh": self.fresh,
            "next": self._next,
        }
        write_atomically(self.folder / MANIFEST, json.dumps(listed))

    def in_service(self) -> list[str]:
        """Every shard a query asks, oldest first."""
        return [name for name, _ in self.parts] + self.sealed + [self.fresh]

    # -- reads and writes ----------------------------------------------------------------

    def upsert(self, points: list[PointData]) -> None:
        """Write to the fresh shard, deleting the ids from older ones first: killed in between,
        the write is lost and the caller, never answered, writes it again; never duplicated."""
        ids = [point_id for point_id, _, _ in points]
        older = self.in_service()[:-1]
        if self.build is not None:
            self.build.deleted_since_copy.update(ids)
        for name in older:
            self._shards[name].update(UpdateOperation.delete_points(ids))
        fresh = self._shards[self.fresh]
        fresh.update(UpdateOperation.upsert_points([Point(*point) for point in points]))
        if fresh.count(CountRequest(exact=True)) >= self.seal_at:
            self._seal()

    def _seal(self) -> None:
        self._shards[self.fresh].flush()
        self.sealed.append(self.fresh)
        self.fresh = self._name("fresh")
        self._shards[self.fresh] = create_shard(self.folder / self.fresh, self.dimension)
        self._save()

    def nearest(self, vector: list[float], k: int, exclude_cycle: str) -> list[Hit]:
        others = Filter(must_not=[match("cycle_id", exclude_cycle)]) if exclude_cycle else None
        request = QueryRequest(
            limit=k, query=Query.Nearest(vector), filter=others, with_payload=True
        )
        found = [
            point
            for name in self.in_service()
            for point in self._shards[name].query(request)
            if point.payload
        ]
        found.sort(key=lambda point: point.score, reverse=True)
        return [Hit(float(point.score), dict(point.payload)) for point in found[:k]]

    def count(self, kind: str) -> int:
        request = CountRequest(exact=True, filter=Filter(must=[match("kind", kind)]))
        return sum(self._shards[name].count(request) for name in self.in_service())

    def close(self) -> None:
        shards, self._shards = self._shards, {}
        for shard in shards.values():
            shard.flush()
            shard.close()
        if self._lock >= 0:
            lock, self._lock = self._lock, -1
            os.close(lock)

    # -- indexing ------------------------------------------------------------------------

    def next_build(self) -> Build | None:
        """The sealed shards, with the youngest parts no larger than them, as one part to
        index; None when nothing is sealed (or a build is under way)."""
        if self.build is not None or not self.sealed:
            return None
        total = self._size_of_sealed()
        taken = len(self.parts)
        while taken > 0 and self.parts[taken - 1][1] <= total:
            taken -= 1
            total += self.parts[taken][1]
        inputs = [name for name, _ in self.parts[taken:]] + self.sealed
        self.build = Build(inputs=inputs, output=self._name("part"))
        self._save()  # `next` moved on: a restart never reuses a half-built part's name
        return self.build

    def _size_of_sealed(self) -> int:
        everything = CountRequest(exact=True)
        return sum(self._shards[name].count(everything) for name in self.sealed)

    def copy_inputs(self, build: Build, into: Path) -> list[Path]:
        """Copies of the build's input shards, flushed first: nothing writes to them until the
        copy is done (the server holds writes back), so each copy is whole."""
        copies = []
        for number, name in enumerate(build.inputs):
            self._shards[name].flush()
            copy = into / f"in-{number}"
            shutil.copytree(self.folder / name, copy)
            copies.append(copy)
        return copies

    def install(self, build: Build) -> None:
        """Put the built part in service in place of its inputs, and drop them."""
        path = self.folder / build.output
        part = EdgeShard.load(str(path))
        if build.deleted_since_copy:
            part.update(UpdateOperation.delete_points(sorted(build.deleted_since_copy)))
        part.flush()
        size = part.count(CountRequest(exact=True))
        self._shards[build.output] = part
        inputs = set(build.inputs)
        self.parts = [(n, s) for n, s in self.parts if n not in inputs] + [(build.output, size)]
        self.sealed = [name for name in self.sealed if name not in inputs]
        self.build = None
        self._save()
        for name in build.inputs:
            shard = self._shards.pop(name)
            shard.close()
            shutil.rmtree(self.folder / name, ignore_errors=True)

    def abandon(self, build: Build) -> None:
        """Forget a build that failed: its inputs stay in service and are built again later."""
        shutil.rmtree(self.folder / build.output, ignore_errors=True)
        self.build = None
