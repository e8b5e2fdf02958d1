"""Fork servers, one per core by default, shared by every run in this process.

A server is started lazily, says in its hello which layers its self-test saw hold, and is
refused (closed, with a clear error) when the safest set this machine offers is not there,
unless the user opted into an unsafe mode. A server that misbehaves is closed and replaced.
Each server takes up to DEPTH runs at once: one runs, the next waits queued in the server.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aimesh.sandbox.fallback import find_bwrap
from aimesh.sandbox.forkserver import ForkServer, SandboxUnavailable

DEPTH = 2
# Layers the engine itself applies around every run, whatever the kernel offers.
ENGINE_LAYERS = ("empty-env", "scratch-dir", "wall-timeout", "disk-cap", "output-cap",
                 "group-kill")  # fmt: skip
# Without these a run is refused: files (Landlock, or bubblewrap standing in), system calls,
# rlimits and no capabilities (each checked from inside a child by the server's self-test).
REQUIRED = ("no-capabilities", "rlimits", "seccomp", "landlock-fs")


@dataclass(frozen=True)
class PoolConfig:
    """How many servers, which interpreter, and whether weaker isolation is acceptable."""

    servers: int = field(default_factory=lambda: os.cpu_count() or 1)
    unsafe: bool = False
    python: str = sys.executable
    landlock: bool = True  # False: act as on a kernel without Landlock (tests, a broken LSM)
    bwrap: bool = True  # may bubblewrap stand in where Landlock is missing

    def __post_init__(self) -> None:
        if self.servers < 1:
            raise ValueError(f"servers must be at least 1, got {self.servers}")
        if not self.python:
            raise ValueError("no Python interpreter to start the fork server with")


class ServerPool:
    """Lends servers: an idle one first, then a new one while under `config.servers`, then a
    busy one with room in its queue; otherwise the caller waits."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._servers: list[ForkServer] = []
        self._starting = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._use_bwrap: bool | None = None
        self._reserved: set[int | None] = set()  # cores of servers being started
        self.layers: list[str] = []

    @contextlib.asynccontextmanager
    async def server(self) -> AsyncIterator[ForkServer]:
        """Borrow a server for one run; one that raised is closed rather than reused (a
        cancelled run is not the server's fault: the runner abandons it, the server stays)."""
        server = await self._acquire()
        healthy = False
        try:
            yield server
            healthy = True
        except asyncio.CancelledError:
            healthy = True
            raise
        finally:
            self._release(server, healthy)

    async def _acquire(self) -> ForkServer:
        while True:
            server = min(self._servers, key=lambda s: s.in_flight, default=None)
            if server is None or server.in_flight > 0:
                if len(self._servers) + self._starting < self.config.servers:
                    server = await self._start()
            if server is not None and server.in_flight < DEPTH:
                server.in_flight += 1
                return server
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # we were woken, then cancelled: pass the wake-up on
                raise

    async def _start(self) -> ForkServer:
        self._starting += 1
        try:
            if self._use_bwrap is None:
                self._use_bwrap = self._choose_bwrap()
            cpu = self._free_cpu()
            self._reserved.add(cpu)  # another server may be starting at the same time
            try:
                server = await ForkServer.start(
                    self.config.python, self._use_bwrap, self.config.landlock, cpu
                )
            finally:
                self._reserved.discard(cpu)
            try:
                self.layers = self._accept(server)
            except SandboxUnavailable:
                server.close()
                raise
        finally:
            self._starting -= 1
            self._wake()
        self._servers.append(server)
        return server

    def _free_cpu(self) -> int | None:
        """A core no live server is pinned to, when there is one for every server; pinned,
        a server and its runs stay on one core (on a 2-core VM, HumanEval ran ~10% faster)."""
        cpus = sorted(os.sched_getaffinity(0))
        if self.config.servers > len(cpus):
            return None
        taken = {server.cpu for server in self._servers} | self._reserved
        return next((cpu for cpu in cpus if cpu not in taken), None)

    def _choose_bwrap(self) -> bool:
        """Where Landlock cannot confine files, bubblewrap around the server does."""
        from aimesh.sandbox.jail.landlock import abi_version

        landlock_missing = not self.config.landlock or abi_version() < 1
        return landlock_missing and self.config.bwrap and find_bwrap() is not None

    def _accept(self, server: ForkServer) -> list[str]:
        """The run's layers, or SandboxUnavailable when a required one is missing."""
        layers = server.layers
        missing = [name for name in REQUIRED if name not in layers]
        if "landlock-fs" in missing and "bubblewrap" in layers:
            missing.remove("landlock-fs")
        if missing and not self.config.unsafe:
            failed = ", ".join(server.hello.get("failed", [])) or "none"
            raise SandboxUnavailable(
                f"refusing to run untrusted code: the sandbox layers {', '.join(missing)} are "
                f"not available here (Landlock ABI {server.hello.get('landlock_abi')}, arch "
                f"{server.hello.get('arch')}, layers that failed their self-test: {failed}). "
                "Install bubblewrap (bwrap) for a fallback, use a kernel with Landlock (>= 5.13) "
                "and seccomp, or set AIMESH_SANDBOX_UNSAFE=1 to run with only: "
                f"{', '.join(layers) or 'no isolation'}"
            )
        extra = ["UNSAFE-missing-" + name for name in missing]
        return [*layers, *ENGINE_LAYERS, *extra]

    def _release(self, server: ForkServer, healthy: bool) -> None:
        server.in_flight -= 1
        try:
            if not healthy or server.closed:
                if server in self._servers:
                    self._servers.remove(server)
                server.close()
        finally:
            self._wake()

    def _wake(self) -> None:
        """Let the first live waiter look again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()


_pool: ServerPool | None = None


def configure(config: PoolConfig) -> ServerPool:
    """Replace the process-wide pool (closing the servers of the old one)."""
    global _pool
    if _pool is not None:
        _pool.close()
    _pool = ServerPool(config)
    return _pool


def pool() -> ServerPool:
    """The process-wide pool, with default settings unless `configure` was called."""
    return _pool if _pool is not None else configure(PoolConfig())


@atexit.register
def _close_pool() -> None:
    if _pool is not None:
        _pool.close()
