"""Fork servers, one per core by default, shared by every run in this process.

A server is started lazily, says in its hello which layers its self-test saw hold, and is
refused (closed, with a clear error) when the safest set this machine offers is not there,
unless the user opted into an unsafe mode. A server that misbehaves is closed and replaced.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimesh.sandbox.fallback import bwrap_command, find_bwrap

START_SCRIPT = Path(__file__).with_name("jail") / "start.py"
MAX_MESSAGE = 65_536
HELLO_TIMEOUT_S = 30.0
# Layers the engine itself applies around every run, whatever the kernel offers.
ENGINE_LAYERS = ("empty-env", "scratch-dir", "rlimits", "wall-timeout", "disk-cap", "output-cap",
                 "group-kill")  # fmt: skip
# Without these a run is refused: files (Landlock, or bubblewrap standing in), system calls,
# and no capabilities.
REQUIRED = ("capabilities", "seccomp", "landlock-fs")
FILE_LAYERS = ("landlock-fs", "bubblewrap")


class SandboxUnavailable(RuntimeError):
    """This machine cannot isolate untrusted code well enough, and no unsafe mode was asked for."""


class ForkServerError(RuntimeError):
    """A fork server died or stopped answering; it is replaced on the next run."""


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


class ForkServer:
    """One server process and the socket the engine talks to it over."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, base: str) -> None:
        self.proc, self.sock, self.base = proc, sock, base
        self.hello: dict[str, Any] = {}

    @classmethod
    async def start(cls, config: PoolConfig, use_bwrap: bool) -> ForkServer:
        base = tempfile.mkdtemp(prefix="aimesh-sandbox-")
        command = [config.python, "-I", "-S", str(START_SCRIPT), "--base", base]
        if use_bwrap or not config.landlock:
            command.append("--no-landlock")
        if use_bwrap:
            command = bwrap_command(
                command, python=config.python, base=base, code_dir=str(START_SCRIPT.parent)
            )
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                command,
                stdin=theirs,
                stdout=subprocess.DEVNULL,
                env={},  # children inherit the server's memory: nothing secret may be in it
                start_new_session=True,  # Ctrl-C is the engine's to handle, not the server's
            )
        except OSError as exc:
            ours.close()
            shutil.rmtree(base, ignore_errors=True)
            raise SandboxUnavailable(
                f"cannot start the sandbox server {command[0]}: {exc}"
            ) from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        server = cls(proc, ours, base)
        try:
            reply = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(ours, MAX_MESSAGE), HELLO_TIMEOUT_S
            )
        except (TimeoutError, OSError) as exc:
            server.close()
            raise SandboxUnavailable(f"the sandbox server did not start: {exc!r}") from exc
        if not reply:
            server.close()
            raise SandboxUnavailable(
                f"the sandbox server exited at start (status {proc.wait()}); its stderr says why"
            )
        server.hello = json.loads(reply)
        return server

    @property
    def layers(self) -> list[str]:
        return list(self.hello.get("layers", []))

    def send(self, request: dict[str, Any], fds: list[int]) -> None:
        """Start one run: the request and its fds (program, stdout, stderr, report)."""
        socket.send_fds(self.sock, [json.dumps(request).encode()], fds)

    async def reply(self) -> dict[str, Any]:
        """The run's end, once the child has exited and been reaped."""
        reply = await asyncio.get_running_loop().sock_recv(self.sock, MAX_MESSAGE)
        if not reply:
            raise ForkServerError(f"the sandbox server exited (status {self.proc.poll()})")
        return json.loads(reply)

    def kill_run(self, run_id: int) -> None:
        """Ask for the run's process group to be killed now (e.g. its output went over the cap)."""
        with contextlib.suppress(OSError):
            self.sock.send(json.dumps({"kill": run_id}).encode())

    def close(self) -> None:
        """Stop the server; its child (if any) dies with it (parent-death signal)."""
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        shutil.rmtree(self.base, ignore_errors=True)


class ServerPool:
    """Hands out idle servers; starts one while under `config.servers`, otherwise waits."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._idle: list[ForkServer] = []
        self._count = 0
        self._waiters: collections.deque[asyncio.Future[ForkServer | None]] = collections.deque()
        self._use_bwrap: bool | None = None
        self.layers: list[str] = []

    @contextlib.asynccontextmanager
    async def server(self) -> AsyncIterator[ForkServer]:
        """Borrow a server for one run; one that raised is closed rather than reused."""
        server = await self._acquire()
        healthy = False
        try:
            yield server
            healthy = True
        finally:
            self._release(server, healthy)

    async def _acquire(self) -> ForkServer:
        while True:
            if self._idle:
                return self._idle.pop()
            if self._count < self.config.servers:
                self._count += 1
                try:
                    return await self._start()
                except BaseException:
                    self._count -= 1
                    self._hand_over(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                server = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand_over(waiter.result())
                raise
            if server is not None:
                return server

    async def _start(self) -> ForkServer:
        if self._use_bwrap is None:
            self._use_bwrap = self._choose_bwrap()
        server = await ForkServer.start(self.config, self._use_bwrap)
        if self._use_bwrap:
            server.hello["layers"] = [*server.layers, "bubblewrap"]
        try:
            self.layers = self._accept(server)
        except SandboxUnavailable:
            server.close()
            raise
        return server

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
        if not healthy:
            server.close()
            self._count -= 1
            self._hand_over(None)
            return
        self._hand_over(server)

    def _hand_over(self, server: ForkServer | None) -> None:
        """Give a server (or, with None, a free slot) to the first live waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(server)
                return
        if server is not None:
            self._idle.append(server)

    def close(self) -> None:
        for server in self._idle:
            server.close()
            self._count -= 1
        self._idle.clear()


_pool: ServerPool | None = None


def configure(config: PoolConfig) -> ServerPool:
    """Replace the process-wide pool (closing the idle servers of the old one)."""
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
