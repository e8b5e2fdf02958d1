"""Builds one indexed part of the embedded memory from copies of shards, in its own process.

Why a process: Qdrant Edge's `optimize()`, which builds the HNSW index, holds the GIL for its
whole run (about 3 s per 8,000 points, 64 s at 100,000), so in the memory server it would stop
every query. Here it stops nothing: the server goes on answering from the inputs, and swaps the
part in when this process exits 0. It runs niced, on one indexing thread, and dies with the
server (Linux), so a restarted server never races an orphan. Usage (by the server only):
`python -m aimesh.memory.index_builder SERVER_PID DIMENSION OUTPUT INPUT...`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

from qdrant_edge import (
    EdgeOptimizersConfig,
    EdgeShard,
    HnswIndexConfig,
    Point,
    ScrollRequest,
    UpdateOperation,
)

from aimesh.memory.tiers import create_shard

SCROLL = 1000
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Be killed when the server dies; exit now if it died already (before this call, while
    this process was still importing, no signal would come)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(3)


def build(dimension: int, output: Path, inputs: list[Path]) -> int:
    """Copy every point of `inputs` into a new shard at `output` and index it; its size."""
    part = create_shard(
        output,
        dimension,
        hnsw_config=HnswIndexConfig(
            m=16, ef_construct=100, full_scan_threshold=10, max_indexing_threads=1
        ),
        optimizers=EdgeOptimizersConfig(indexing_threshold=1, default_segment_number=1),
    )
    size = 0
    for path in inputs:
        shard = EdgeShard.load(str(path))
        offset = None
        while True:
            page = ScrollRequest(offset=offset, limit=SCROLL, with_payload=True, with_vector=True)
            records, offset = shard.scroll(page)
            points = [Point(r.id, r.vector, r.payload) for r in records if r.vector is not None]
            if points:
                part.update(UpdateOperation.upsert_points(points))
                size += len(points)
            if offset is None:
                break
        shard.close()
    part.optimize()
    part.flush()
    part.close()
    return size


def main(argv: list[str]) -> int:
    parent, dimension, output, *inputs = argv
    die_with_parent(int(parent))
    with contextlib.suppress(OSError):
        os.nice(10)
    build(int(dimension), Path(output), [Path(path) for path in inputs])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
