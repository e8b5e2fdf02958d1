"""The embedded memory's engine process and its tiers: sealed shards are indexed into parts by a
builder process while queries go on, recall finds every memory in whichever shard it is, an id
written again is replaced wherever it lives, and a killed engine or builder loses nothing.

Small `seal_at` values make the tiers appear with a few hundred points; vectors are random unit
vectors, and a query with a stored point's own vector must find that point first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    Point,
    UpdateOperation,
)

from aimesh.memory.edge_store import EdgeStore, MemoryEngineError
from aimesh.memory.store import OWNER_FILE
from aimesh.memory.tiers import MANIFEST

DIMENSION = 16
MODEL = "test-embed"


@pytest.fixture
async def open_store():
    """Opens stores that are closed after the test, passed or not: an engine left running
    would keep its pipe, and the test's event loop, waiting."""
    opened: list[EdgeStore] = []

    def opener(folder: Path, seal_at: int) -> EdgeStore:
        opened.append(EdgeStore(folder, seal_at=seal_at))
        return opened[-1]

    yield opener
    for store in opened:
        await store.close()


def points(first: int, count: int) -> list[tuple[str, list[float], dict[str, Any]]]:
    made = []
    for n in range(first, first + count):
        vector = np.random.default_rng(n).standard_normal(DIMENSION)
        payload = {"n": n, "cycle_id": f"c{n // 2}", "kind": "lesson" if n % 3 == 0 else "failure"}
        unit = (vector / np.linalg.norm(vector)).tolist()
        made.append((f"00000000-0000-0000-0000-{n:012d}", unit, payload))
    return made


async def fill(store: EdgeStore, count: int, batch: int = 10) -> list[Any]:
    made = points(0, count)
    await store.prepare(DIMENSION, MODEL)
    for start in range(0, count, batch):
        await store.upsert_many(made[start : start + batch])
    return made


async def found_first(store: EdgeStore, point: Any, exclude_cycle: str = "") -> dict[str, Any]:
    (hit, *_) = await store.nearest(point[1], 3, exclude_cycle)
    return hit.payload


def kinds(made: list[Any]) -> dict[str, int]:
    return {kind: sum(p[2]["kind"] == kind for p in made) for kind in ("failure", "lesson")}


async def test_sealed_shards_become_indexed_parts_and_every_memory_is_found(tmp_path, open_store):
    store = open_store(tmp_path / "mem", 50)
    made = await fill(store, 230)
    layout = await store.settle()
    assert sum(layout["parts"]) == 200 and layout["sealed"] == 0, layout
    assert len(layout["parts"]) <= 2, "parts merge like a binary counter: 200 = 4 seals"
    for point in made[::7]:
        assert (await found_first(store, point))["n"] == point[2]["n"]
        others = await store.nearest(point[1], 3, point[2]["cycle_id"])
        assert len(others) == 3 and point[2]["cycle_id"] not in {
            h.payload["cycle_id"] for h in others
        }
    for kind, count in kinds(made).items():
        assert await store.count(kind) == count
    await store.close()

    reopened = open_store(tmp_path / "mem", 50)
    assert await reopened.count("failure") == kinds(made)["failure"]
    assert (await found_first(reopened, made[3]))["n"] == 3
    listed = json.loads((tmp_path / "mem" / MANIFEST).read_text())
    shards = {name for name, _ in listed["parts"]} | set(listed["sealed"]) | {listed["fresh"]}
    assert {p.name for p in (tmp_path / "mem").iterdir() if p.is_dir()} == shards
    await reopened.close()


async def test_an_id_written_again_replaces_the_memory_in_any_shard(tmp_path, open_store):
    store = open_store(tmp_path / "mem", 40)
    made = await fill(store, 100)
    await store.settle()
    point_id, vector, payload = made[5]  # in an indexed part by now
    await store.upsert(point_id, vector, {**payload, "n": "again"})
    assert (await found_first(store, made[5]))["n"] == "again"
    for kind, count in kinds(made).items():
        assert await store.count(kind) == count, "replaced, never added"
    await store.upsert_many(points(100, 40))  # seals again: the replaced point stays replaced
    await store.settle()
    assert (await found_first(store, made[5]))["n"] == "again"
    assert await store.count("failure") == kinds(points(0, 140))["failure"]
    await store.close()


async def test_queries_find_a_sealed_shards_memories_while_its_part_is_built(tmp_path, open_store):
    store = open_store(tmp_path / "mem", 2000)
    made = await fill(store, 2000, batch=500)
    assert (await store.layout())["sealed"] == 1
    for point in made[::400]:
        assert (await found_first(store, point))["n"] == point[2]["n"]
    assert (await store.layout())["building"], "indexing 2,000 points takes most of a second"
    assert (await store.settle())["parts"] == [2000]


async def test_an_id_written_again_while_its_shard_is_built_stays_replaced(tmp_path, open_store):
    store = open_store(tmp_path / "mem", 2000)
    made = await fill(store, 2000, batch=500)
    point_id, vector, payload = made[1234]  # in the sealed shard, copied into the build
    await store.upsert(point_id, vector, {**payload, "n": "again"})
    assert (await store.layout())["building"]
    assert (await found_first(store, made[1234]))["n"] == "again"
    assert (await store.settle())["parts"] == [1999], "the installed part had it deleted"
    assert (await found_first(store, made[1234]))["n"] == "again"
    assert await store.count("failure") == kinds(made)["failure"]
    await store.close()


async def test_a_second_engine_on_a_folder_in_use_is_refused_and_touches_nothing(
    tmp_path, open_store
):
    first = open_store(tmp_path / "mem", 50)
    made = await fill(first, 60)
    second = open_store(tmp_path / "mem", 50)
    with pytest.raises(MemoryEngineError, match="in use by another process"):
        await second.prepare(DIMENSION, MODEL)
    assert (await first.settle())["parts"] == [50]
    assert (await found_first(first, made[55]))["n"] == 55


async def test_a_killed_engine_is_restarted_by_the_next_call_and_lost_nothing(tmp_path, open_store):
    store = open_store(tmp_path / "mem", 30)
    made = await fill(store, 45)
    assert store._engine is not None
    os.kill(store._engine.process.pid, signal.SIGKILL)
    assert (await found_first(store, made[40]))["n"] == 40, "the call is tried on a new engine"
    assert await store.count("lesson") == kinds(made)["lesson"]
    layout = await store.settle()
    assert sum(layout["parts"]) == 30, "the sealed shard is indexed by the new engine"
    await store.close()


async def test_an_engine_killed_mid_build_builds_again_and_leaves_no_debris(tmp_path, open_store):
    store = open_store(tmp_path / "mem", 1500)
    made = await fill(store, 1600, batch=500)
    assert (await store.layout())["building"]
    assert store._engine is not None
    os.kill(store._engine.process.pid, signal.SIGKILL)  # its builder dies with it
    assert (await store.settle())["parts"] == [1500]
    assert (await found_first(store, made[7]))["n"] == 7
    folders = sorted(p.name for p in (tmp_path / "mem").iterdir())
    kinds_of_entry = [name.split("-")[0] for name in folders]
    assert kinds_of_entry == ["aimesh", "engine.lock", "fresh", "part", "tiers.json"], folders
    await store.close()


async def test_the_previous_versions_single_shard_joins_the_tiers(tmp_path, capfd, open_store):
    folder = tmp_path / "mem"
    config = EdgeConfig(vectors=EdgeVectorParams(size=DIMENSION, distance=Distance.Cosine))
    old = EdgeShard.create(str(folder), config)
    made = points(0, 60)
    old.update(UpdateOperation.upsert_points([Point(*point) for point in made]))
    old.flush()
    old.close()
    (folder / OWNER_FILE).write_text(json.dumps({"embed_model": MODEL, "dimension": DIMENSION}))

    store = open_store(folder, 50)
    assert await store.count("failure") == kinds(made)["failure"]
    assert (await store.settle())["parts"] == [60]
    assert (await found_first(store, made[59]))["n"] == 59
    await store.close()
    assert "single shard into fresh-000000" in capfd.readouterr().err
    assert not (folder / "segments").exists()


def test_nothing_of_the_engine_is_loaded_in_the_worker():
    """The worker's side must not load the binding: it would hold the worker's GIL."""
    code = "import sys, aimesh.memory, aimesh.services; print('qdrant_edge' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "False", loaded.stderr
