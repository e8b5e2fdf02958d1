"""One fork server process, and the socket the engine talks to it over.

Runs may be pipelined: the engine sends the next request while one runs, and the server queues
it, so a server never idles while the engine handles a reply. Replies come back in order; each
carries its run id, and whichever caller is reading hands the others their replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from aimesh.sandbox.fallback import bwrap_command
from aimesh.sandbox.jail.scratch import remove

START_SCRIPT = Path(__file__).with_name("jail") / "start.py"
MAX_MESSAGE = 65_536
HELLO_TIMEOUT_S = 30.0
SHM = "/dev/shm"
MIN_SHM_BYTES = 1 << 30


def scratch_root() -> str | None:
    """Where scratch dirs go: /dev/shm when it is a roomy tmpfs, else the usual temp dir.

    A run's dir is made and removed every few milliseconds; on ext4, inode allocation then
    scans for recently deleted inodes and mkdir alone took a fifth of a server's time.
    """
    try:
        st = os.statvfs(SHM)
    except OSError:
        return None
    roomy = st.f_bavail * st.f_frsize >= MIN_SHM_BYTES
    return SHM if roomy and os.access(SHM, os.W_OK | os.X_OK) else None


BASE_PREFIX = "aimesh-sandbox-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_bases(root: str | None) -> int:
    """Remove the base dirs of engines that died without cleaning up (kill -9 of a worker takes
    its servers along); each name carries its engine's pid. Returns how many were removed."""
    folder = Path(root or tempfile.gettempdir())
    removed = 0
    for base in folder.glob(f"{BASE_PREFIX}*-*"):
        owner = base.name[len(BASE_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            with contextlib.suppress(OSError):
                remove(str(base))
                removed += 1
    return removed


class SandboxUnavailable(RuntimeError):
    """This machine cannot isolate untrusted code well enough, and no unsafe mode was asked for."""


class ForkServerError(RuntimeError):
    """A fork server died or stopped answering; it is replaced on the next run."""


class ForkServer:
    """A started server: send runs, await their replies, kill one, close it all."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, base: str) -> None:
        self.proc, self.sock, self.base = proc, sock, base
        self.hello: dict[str, Any] = {}
        self.in_flight = 0  # runs lent out by the pool
        self.cpu: int | None = None  # the core it is pinned to, if any
        self.closed = False
        self._ahead: dict[int, float] = {}  # run id -> timeout, for runs sent and not answered
        self._replies: dict[int, dict[str, Any]] = {}
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._abandoned: set[int] = set()  # runs whose caller gave up: their replies are dropped
        self._recv: asyncio.Future[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False

    @classmethod
    async def start(
        cls, python: str, use_bwrap: bool, landlock: bool, cpu: int | None = None
    ) -> ForkServer:
        root = scratch_root()
        remove_stale_bases(root)
        base = tempfile.mkdtemp(prefix=f"{BASE_PREFIX}{os.getpid()}-", dir=root)
        command = [python, "-I", "-S", str(START_SCRIPT), "--base", base]
        if use_bwrap or not landlock:
            command.append("--no-landlock")
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        if use_bwrap:
            command = bwrap_command(
                command, python=python, base=base, code_dir=str(START_SCRIPT.parent)
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
            hello = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(ours, MAX_MESSAGE), HELLO_TIMEOUT_S
            )
        except (TimeoutError, OSError) as exc:
            server.close()
            raise SandboxUnavailable(f"the sandbox server did not start: {exc!r}") from exc
        except BaseException:  # cancelled while it started: leave nothing behind
            server.close()
            raise
        if not hello:
            server.close()
            raise SandboxUnavailable(
                f"the sandbox server exited at start (status {proc.wait()}); its stderr says why"
            )
        server.hello = json.loads(hello)
        server.cpu = cpu
        if use_bwrap:
            server.hello["layers"] = [*server.layers, "bubblewrap"]
        return server

    @property
    def layers(self) -> list[str]:
        return list(self.hello.get("layers", []))

    def queued_s(self) -> float:
        """The longest the runs already sent may keep a new one waiting."""
        return sum(self._ahead.values())

    def send(self, request: dict[str, Any], fds: list[int]) -> None:
        """Start (or queue) one run: the request and its fds (program, stdout, stderr, report)."""
        socket.send_fds(self.sock, [json.dumps(request).encode()], fds)
        self._ahead[request["id"]] = float(request["limits"]["timeout_s"])

    async def reply(self, run_id: int) -> dict[str, Any]:
        """The run's end, once its child has exited and been reaped."""
        loop = asyncio.get_running_loop()
        try:
            while run_id not in self._replies:
                if self._reading:  # another caller reads; it hands over our reply or the reading
                    woken = loop.create_future()
                    self._waiting[run_id] = woken
                    try:
                        await woken
                    finally:
                        self._waiting.pop(run_id, None)
                    continue
                await self._read_one(loop)
            return self._replies.pop(run_id)
        finally:
            self._ahead.pop(run_id, None)

    async def _read_one(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.closed:
            raise ForkServerError("the sandbox server was closed during the run")
        self._reading, self._loop = True, loop
        self._recv = asyncio.ensure_future(loop.sock_recv(self.sock, MAX_MESSAGE))
        try:
            data = await self._recv
        except asyncio.CancelledError:
            if self.closed:  # close() stopped the read, not our caller's cancellation
                raise ForkServerError("the sandbox server was closed during the run") from None
            raise
        finally:
            self._reading, self._recv = False, None
            self._wake(None)  # whoever still waits takes over the reading
        if not data:
            raise ForkServerError(f"the sandbox server exited (status {self.proc.poll()})")
        message = json.loads(data)
        run_id = message.get("id")
        if run_id in self._abandoned:
            self._abandoned.discard(run_id)
            return
        self._replies[run_id] = message
        self._wake(run_id)

    def abandon(self, run_id: int) -> None:
        """The caller of `run_id` gave up (cancelled): kill the run, drop its reply when it comes.

        The server stays usable for the other runs sent to it.
        """
        self._ahead.pop(run_id, None)
        if run_id in self._replies:
            del self._replies[run_id]
            return
        self._abandoned.add(run_id)
        self.kill_run(run_id)

    def _wake(self, run_id: int | None) -> None:
        for key, woken in self._waiting.items():
            if (run_id is None or key == run_id) and not woken.done():
                woken.set_result(None)
                return

    def kill_run(self, run_id: int) -> None:
        """Ask for the run's process group to be killed now (e.g. its output went over the cap)."""
        with contextlib.suppress(OSError):
            self.sock.send(json.dumps({"kill": run_id}).encode())

    def close(self) -> None:
        """Stop the server; its child (if any) dies with it (parent-death signal)."""
        if self.closed:
            return
        self.closed = True
        if self._recv is not None and not self._recv.done():
            # Unregister the read now: a later socket reusing this fd number must be polled.
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())
            self._recv.cancel()
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            remove(self.base)  # no recursion: a run may have nested dirs thousands deep
        for woken in self._waiting.values():
            if not woken.done():
                woken.set_result(None)  # they find the socket closed and raise
