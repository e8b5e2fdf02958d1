"""What memory costs as it grows: recall and store latency at 1k, 10k and 100k memories.

Both stores side by side in one run: the embedded engine the mesh uses (Qdrant Edge, with
keyword indexes on `cycle_id` and `kind`), and qdrant-client's local mode, the embedded store
before it, as the baseline. Each is filled with N memories shaped like the mesh's (384-dimension
vectors, as e5-small gives; payloads with kind, cycle_id, task, code and error; three memories
per cycle), then timed through `MemorySkill`, the interface the agents call:
- recall k=3 leaving out one cycle's own memories (what the Consumer asks: `exclude_cycle`),
- recall k=3 with no filter,
- storing one memory (`remember`).
The embedding is instant (a fixed random vector per text), so only the store is measured.
Each cell is the median over ROUNDS rounds of its p50 and p95 over QUERIES calls. The embedded
engine indexes in the background: `index s` is how long after loading every memory was in an
indexed part (the timings follow it). `stall` is the longest the caller's event loop stood still
during the filtered recalls (a 1 ms ticker beside them), the median over rounds: what every
other agent in the worker waits while memory answers. The baseline
at 100k gets fewer calls (it scans every point in Python per query: seconds each) and says so.
Timings are printed, never asserted. Run from the repo root:
`python bench/memory_bench.py [--sizes 1000,10000,100000]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient, models

from aimesh.memory import MemorySkill
from aimesh.memory.client_store import ClientStore
from aimesh.memory.edge_store import EdgeStore
from aimesh.memory.skill import FAILURE, LESSON

DIMENSION = 384
MODEL = "bench-embed"
QUERIES = 200
BASELINE_QUERIES_AT_100K = 20
ROUNDS = 3
BATCH = 1000
TARGET_MS = 20.0
OPERATIONS = ("filtered", "unfiltered", "store")


def vector_of(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


async def instant_embed(texts: list[str]) -> list[list[float]]:
    return [vector_of(text) for text in texts]


def memories(count: int) -> list[tuple[str, list[float], dict[str, Any]]]:
    rng = np.random.default_rng(count)
    vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    points = []
    for i in range(count):
        payload = {
            "kind": LESSON if i % 3 == 2 else FAILURE,
            "cycle_id": f"cycle-{i // 3}",
            "attempt": i % 3 + 1,
            "task": f"Task {i}: write a function that handles case {i % 97}",
            "code": f"def solve_{i}(xs):\n    return sorted(xs)[{i % 7}]\n",
            "error": f"IndexError: list index out of range at line 2 (case {i})",
            "embed_model": MODEL,
        }
        points.append((f"00000000-0000-0000-0000-{i:012d}", vectors[i].tolist(), payload))
    return points


async def fill_edge(folder: Path, points: list[tuple[str, list[float], dict[str, Any]]]) -> Any:
    store = EdgeStore(folder)
    await store.prepare(DIMENSION, MODEL)
    for start in range(0, len(points), BATCH):
        await store.upsert_many(points[start : start + BATCH])
    return store


async def fill_local(folder: Path, points: list[tuple[str, list[float], dict[str, Any]]]) -> Any:
    store = ClientStore(lambda: AsyncQdrantClient(path=str(folder)), "bench", indexed=False)
    await store.prepare(DIMENSION, MODEL)
    for start in range(0, len(points), BATCH):
        batch = [
            models.PointStruct(id=pid, vector=vec, payload=payload)
            for pid, vec, payload in points[start : start + BATCH]
        ]
        await store.client.upsert("bench", points=batch)
    return store


async def latencies_ms(call: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    taken = []
    for i in range(count):
        started = time.perf_counter()
        await call(i)
        taken.append((time.perf_counter() - started) * 1000)
    return taken


async def with_longest_stall_ms(work: Awaitable[list[float]]) -> tuple[list[float], float]:
    """`work`'s result, and the longest gap between ticks of a 1 ms ticker while it ran."""
    longest = 0.0
    running = True

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, (now - last) * 1000)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker has started: work that never yields is a stall too
    try:
        result = await work
    finally:
        running = False
        await ticker
    return result, longest


def p50_p95(values: Sequence[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


async def measure(
    memory: MemorySkill, size: int, queries: int
) -> tuple[dict[str, tuple[float, float]], float]:
    """Median over ROUNDS of each operation's (p50, p95) in ms, and of the longest stall."""
    cycles = size // 3

    async def filtered(i: int) -> None:
        await memory.recall(f"IndexError query {i}", 3, exclude_cycle=f"cycle-{i % cycles}")

    async def unfiltered(i: int) -> None:
        await memory.recall(f"IndexError query {i}", 3)

    rounds: dict[str, list[tuple[float, float]]] = {"filtered": [], "unfiltered": [], "store": []}
    stalls = []
    for r in range(ROUNDS):

        async def store(i: int, r: int = r) -> None:
            await memory.remember(
                FAILURE, cycle_id=f"new-{r}-{i}", attempt=1, task="t", code="c", error=f"E {i}"
            )

        taken, stall = await with_longest_stall_ms(latencies_ms(filtered, queries))
        rounds["filtered"].append(p50_p95(taken))
        stalls.append(stall)
        rounds["unfiltered"].append(p50_p95(await latencies_ms(unfiltered, queries)))
        rounds["store"].append(p50_p95(await latencies_ms(store, queries)))
    figures = {
        name: (
            statistics.median(p50 for p50, _ in values),
            statistics.median(p95 for _, p95 in values),
        )
        for name, values in rounds.items()
    }
    return figures, statistics.median(stalls)


async def one_size(size: int, root: Path) -> list[str]:
    points = memories(size)
    lines = []
    results = {}
    for name, fill in (("embedded engine", fill_edge), ("local mode", fill_local)):
        started = time.perf_counter()
        store = await fill(root / f"{name.replace(' ', '-')}-{size}", points)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        if isinstance(store, EdgeStore):
            await store.settle()
        index_s = time.perf_counter() - started
        queries = BASELINE_QUERIES_AT_100K if name == "local mode" and size >= 100_000 else QUERIES
        memory = MemorySkill(store, instant_embed, MODEL)
        try:
            results[name] = (*await measure(memory, size, queries), load_s, index_s, queries)
        finally:
            await memory.close()
    edge = results["embedded engine"][0]
    for name, (figures, stall, load_s, index_s, queries) in results.items():
        cells = "".join(f"{figures[op][0]:>16.2f}{figures[op][1]:>16.2f}" for op in OPERATIONS)
        lines.append(
            f"{size:>7} {name:<16}{cells}{stall:>9.1f}{load_s:>9.1f}{index_s:>9.1f}{queries:>6}"
        )
    base = results["local mode"][0]
    ratios = "  ".join(
        f"{op} p95 {base[op][1] / edge[op][1]:.1f}x" for op in OPERATIONS if edge[op][1] > 0
    )
    verdict = ""
    if size >= 100_000:
        met = all(edge[op][1] <= TARGET_MS for op in ("filtered", "store"))
        verdict = f"; target {'met' if met else 'NOT met'}"
    lines.append(f"{'':>7} baseline / engine: {ratios}{verdict}")
    return lines


async def main(sizes: Sequence[int]) -> None:
    print(f"memory: {DIMENSION}-dim vectors, k=3, {ROUNDS} rounds, median of round p50/p95 (ms)")
    print(f"target (embedded engine): filtered recall and store p95 <= {TARGET_MS:.0f} ms at 100k")
    ops = "".join(f"{op + ' p50':>16}{op + ' p95':>16}" for op in OPERATIONS)
    columns = f"{'stall':>9}{'load s':>9}{'index s':>9}{'calls':>6}"
    print(f"{'size':>7} {'store':<16}{ops}{columns}")
    with tempfile.TemporaryDirectory(prefix="aimesh-membench-") as tmp:
        for size in sizes:
            for line in await one_size(size, Path(tmp)):
                print(line, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="memory counts, comma-separated"
    )
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: not whole numbers: {args.sizes!r}")
    if any(size < 3 for size in args.sizes):
        parser.error("--sizes: each at least 3")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args().sizes))
