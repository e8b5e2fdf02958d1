"""The embedded memory's engine process: Qdrant Edge shards (aimesh.memory.tiers), served over a
pipe to the worker that started it, and indexed in the background by builder processes.

Why a process of its own: the `qdrant-edge-py` binding keeps the GIL during every call, so in
the worker each query stopped the event loop (21 ms per query at 100,000 memories), and with it
every agent, web view and Kafka heartbeat. Here a query stops only this process. The worker's
side is aimesh.memory.edge_store; usage (by it only):
`python -m aimesh.memory.edge_server FOLDER [SEAL_AT]`.

Writes wait while a build copies its input shards, so every copy is whole: the sealed shard,
and at a merge the parts it joins (up to the whole memory, about 1 s per 100,000 memories).
Queries wait for no build, only for a built part being put in service (loaded, its late deletes
made, its inputs removed). A build that fails leaves its inputs in service and is tried again
after BUILD_RETRY_S; `settle` says why while it keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from aimesh.memory.store import OWNER_FILE, MemoryMismatchError, mismatch
from aimesh.memory.tiers import SEAL_AT, Build, Tiers, write_atomically
from aimesh.memory.wire import frame, read_frame

BUILD_RETRY_S = 30.0

log = logging.getLogger(__name__)


def owner_on_disk(folder: Path) -> tuple[int, str] | None:
    """(dimension, embedding model) of the vectors in the folder; None before the first."""
    path = folder / OWNER_FILE
    if not path.is_file():
        return None
    owner = json.loads(path.read_text())
    return int(owner["dimension"]), str(owner["embed_model"])


class MemoryServer:
    """The operations the worker asks for, on one collection folder."""

    def __init__(self, folder: Path, seal_at: int) -> None:
        self.folder = folder
        self.seal_at = seal_at
        self.tiers: Tiers | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._sealed = asyncio.Event()
        self._indexer: asyncio.Task[None] | None = None
        self._builder: asyncio.subprocess.Process | None = None
        self.failure = ""

    def _ready(self) -> Tiers:
        if self.tiers is None:
            raise RuntimeError("the memory store is used before prepare()")
        return self.tiers

    async def prepare(self, dimension: int, model: str) -> None:
        owner = owner_on_disk(self.folder)
        if owner is not None and owner != (dimension, model):
            raise mismatch(f"in {self.folder}", *owner, model, dimension)
        if self.tiers is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.tiers = Tiers(self.folder, dimension, self.seal_at)
            if owner is None:
                text = json.dumps({"embed_model": model, "dimension": dimension})
                write_atomically(self.folder / OWNER_FILE, text)
            self._indexer = asyncio.create_task(self._keep_indexing())
            self._sealed.set()

    async def upsert(self, points: list[tuple[str, list[float], dict[str, Any]]]) -> None:
        tiers = self._ready()
        await self._writable.wait()
        tiers.upsert(points)
        if tiers.sealed:
            self._sealed.set()  # the indexer looks again (a build under way takes it after)

    async def nearest(self, vector: list[float], k: int, exclude_cycle: str) -> list[Any]:
        return [(hit.score, hit.payload) for hit in self._ready().nearest(vector, k, exclude_cycle)]

    async def count(self, kind: str) -> int:
        if self.tiers is None:
            owner = owner_on_disk(self.folder)
            if owner is None:
                return 0
            await self.prepare(*owner)
        return self._ready().count(kind)

    async def layout(self) -> dict[str, Any]:
        """The parts' sizes, the sealed shards waiting, and whether a build is under way."""
        tiers = self._ready()
        return {
            "parts": [size for _, size in tiers.parts],
            "sealed": len(tiers.sealed),
            "building": tiers.build is not None,
        }

    async def settle(self) -> dict[str, Any]:
        """Wait until every sealed shard is indexed; the layout then (for benches and tests)."""
        tiers = self._ready()
        while tiers.sealed or tiers.build is not None:
            if self.failure:
                raise RuntimeError(f"the memory index cannot be built: {self.failure}")
            await asyncio.sleep(0.05)
        return await self.layout()

    async def _keep_indexing(self) -> None:
        tiers = self._ready()
        while True:
            build = tiers.next_build()
            if build is None:
                self._sealed.clear()
                await self._sealed.wait()
                continue
            try:
                if await self._build(tiers, build):
                    tiers.install(build)
                    self.failure = ""
                    continue
            except Exception as error:  # a full disk, say: the indexer must outlive it
                self.failure = f"{type(error).__name__}: {error}"
                log.exception("memory: indexing %s failed", build.inputs)
            tiers.abandon(build)
            await asyncio.sleep(BUILD_RETRY_S)

    async def _build(self, tiers: Tiers, build: Build) -> bool:
        work = self.folder / f"build-{build.output}"
        try:
            self._writable.clear()
            try:
                copies = await asyncio.to_thread(tiers.copy_inputs, build, work)
            finally:
                self._writable.set()
            self._builder = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aimesh.memory.index_builder", str(os.getpid()),
                str(tiers.dimension),
                str(self.folder / build.output), *map(str, copies),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, errors = await self._builder.communicate()
            if self._builder.returncode == 0:
                return True
            self.failure = errors.decode(errors="replace").strip()[-2000:] or (
                f"the index builder exited {self._builder.returncode}"
            )
            log.error("memory: indexing %s failed: %s", build.inputs, self.failure)
            return False
        finally:
            self._builder = None
            shutil.rmtree(work, ignore_errors=True)

    async def close(self) -> None:
        if self._builder is not None and self._builder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._builder.kill()
        if self._indexer is not None:
            self._indexer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._indexer
        if self.tiers is not None:
            self.tiers.close()
            self.tiers = None


async def answer(server: MemoryServer, request: Any, out: Any) -> None:
    request_id, operation, arguments = request
    try:
        reply = frame((request_id, "ok", await getattr(server, operation)(*arguments)))
    except MemoryMismatchError as error:
        reply = frame((request_id, "mismatch", str(error)))
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # a panic in the binding too: every call gets its answer
        log.exception("memory: %s failed", operation)
        reply = frame((request_id, "error", f"{type(error).__name__}: {error}"))
    out.write(reply)
    out.flush()


async def serve(folder: Path, seal_at: int) -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() from a library must not land in the replies
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    server = MemoryServer(folder, seal_at)
    answering: set[asyncio.Task[None]] = set()
    try:
        while (request := await read_frame(reader)) is not None:
            task = asyncio.create_task(answer(server, request, out))
            answering.add(task)
            task.add_done_callback(answering.discard)
        if answering:
            await asyncio.wait(answering)
    finally:
        await server.close()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    folder, *sealing = argv
    asyncio.run(serve(Path(folder), int(sealing[0]) if sealing else SEAL_AT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
