"""The embedded memory: Qdrant's own engine (PyPI `qdrant-edge-py`) in one folder, run by a
process of its own that this store starts and talks to over a pipe.

Why not qdrant-client's local mode, the embedded default before: it keeps points in Python and
scans every one of them for each query, so recall slowed down with every failure the mesh
learned from (with the own-cycle filter, p50 343 ms at 10,000 memories). Qdrant Edge runs
Qdrant's segment engine natively, with keyword indexes on `cycle_id` and `kind`, and its HNSW
index keeps a filtered query at a few milliseconds at 100,000 (bench/memory_bench.py).

Why a process (aimesh.memory.edge_server): the binding keeps the GIL during every call, so in
the worker every query stopped the event loop, and building the index (aimesh.memory.tiers)
stopped it for a minute. The process starts on first use and stops when the store is closed or
the worker exits. If it dies, the call that was waiting is tried once more on a new one; it
keeps a write-ahead log, so a killed process loses no memory it stored. One process holds the
folder at a time (workers on one machine need their own AIMESH_DATA_DIR, or a Qdrant server).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from pathlib import Path
from typing import Any

from aimesh.memory.store import OWNER_FILE, Hit, MemoryMismatchError
from aimesh.memory.wire import frame, read_frame

CLOSE_WAIT_S = 30.0


class MemoryEngineError(RuntimeError):
    """The memory engine process failed a call, or stopped."""


class _EngineStopped(MemoryEngineError):
    pass


class _Engine:
    """One running engine process and the calls waiting for its replies."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reading = asyncio.create_task(self._read_replies())

    @classmethod
    async def start(cls, folder: Path, seal_at: int | None) -> _Engine:
        sealing = [] if seal_at is None else [str(seal_at)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aimesh.memory.edge_server", str(folder), *sealing,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    @property
    def running(self) -> bool:
        return self.process.returncode is None and not self._reading.done()

    async def call(self, operation: str, arguments: tuple[Any, ...]) -> Any:
        request_id = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = reply
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(frame((request_id, operation, arguments)))
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as error:
            self._waiting.pop(request_id, None)
            raise _EngineStopped(f"the memory engine stopped: {error}") from None
        outcome, value = await reply
        if outcome == "mismatch":
            raise MemoryMismatchError(value)
        if outcome != "ok":
            raise MemoryEngineError(f"memory {operation}: {value}")
        return value

    async def _read_replies(self) -> None:
        assert self.process.stdout is not None
        try:
            while (reply := await read_frame(self.process.stdout)) is not None:
                request_id, outcome, value = reply
                waiting = self._waiting.pop(request_id, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result((outcome, value))
        except Exception:  # a reply that is not one: the engine is not to be trusted any more
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            raise
        finally:
            code = await self.process.wait()
            stopped = _EngineStopped(f"the memory engine stopped (exit code {code})")
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(stopped)
            self._waiting.clear()

    async def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), CLOSE_WAIT_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self._reading


class EdgeStore:
    """One collection as one folder of Qdrant Edge, served by its own process."""

    def __init__(self, folder: Path, seal_at: int | None = None) -> None:
        """`seal_at`: points a shard takes before it is indexed (tiers.SEAL_AT when None)."""
        self.folder = folder
        self.seal_at = seal_at
        self._engine: _Engine | None = None
        self._owner: tuple[int, str] | None = None  # prepared for; a new engine is told again
        self._starting = asyncio.Lock()
        self._closed = False

    def exists(self) -> bool:
        return (self.folder / OWNER_FILE).is_file()

    async def _running(self) -> _Engine:
        if self._closed:
            raise MemoryEngineError(f"the memory store of {self.folder} is closed")
        async with self._starting:
            if self._engine is None or not self._engine.running:
                if self._engine is not None:
                    engine, self._engine = self._engine, None
                    await engine.close()
                engine = await _Engine.start(self.folder, self.seal_at)
                try:
                    if self._owner is not None:
                        await engine.call("prepare", self._owner)
                except BaseException:
                    await engine.close()
                    raise
                self._engine = engine
            return self._engine

    async def _call(self, operation: str, *arguments: Any) -> Any:
        """The call's answer; a call the engine died under is tried once on a new engine."""
        try:
            return await (await self._running()).call(operation, arguments)
        except _EngineStopped:
            return await (await self._running()).call(operation, arguments)

    async def prepare(self, dimension: int, model: str) -> None:
        if self._owner == (dimension, model):
            return
        await self._call("prepare", dimension, model)  # another model: the engine names it
        if self._owner is None:
            self._owner = (dimension, model)

    async def upsert(self, point_id: str, vector: list[float], payload: dict[str, Any]) -> None:
        await self._call("upsert", [(point_id, vector, payload)])

    async def upsert_many(self, points: list[tuple[str, list[float], dict[str, Any]]]) -> None:
        await self._call("upsert", points)

    async def nearest(self, vector: list[float], k: int, exclude_cycle: str) -> list[Hit]:
        found = await self._call("nearest", vector, k, exclude_cycle)
        return [Hit(score, payload) for score, payload in found]

    async def count(self, kind: str) -> int:
        if self._engine is None and not self.exists():
            return 0
        return int(await self._call("count", kind))

    async def layout(self) -> dict[str, Any]:
        """`parts`: the indexed parts' sizes; `sealed`: full shards waiting to be indexed;
        `building`: whether a part is being built."""
        return dict(await self._call("layout"))

    async def settle(self) -> dict[str, Any]:
        """Wait until every sealed shard is indexed, then the layout. For benches and tests:
        the mesh never waits for an index."""
        return dict(await self._call("settle"))

    async def close(self) -> None:
        self._closed = True
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.close()
