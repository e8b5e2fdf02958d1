"""The fork server: a warm interpreter that forks one isolated child per run.

Started by the engine as `python -I -S server.py --base DIR` with an empty environment and a
SOCK_SEQPACKET socket as stdin. Each request is one JSON datagram carrying four fds (program,
stdout, stderr, report); a request arriving during a run waits its turn in a queue (the
engine sends ahead, so the server never idles). The server never reads the program or its
output, so its memory,
which every child inherits, holds nothing of earlier runs. It enforces the wall clock and the
scratch-disk cap, kills the child's process group and removes its scratch dir; the reply says
how the child ended.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from . import capabilities, child, landlock, libc, rlimits, seccomp
from .rlimits import ChildLimits
from .scratch import OverCap, remove, usage

# Imported once here, so a child pays nothing for the usual suspects of generated code. Not
# more: every module's memory (and each C extension's mappings) makes every fork dearer, which
# is also why the server avoids shutil, argparse and secrets (zlib, lzma, libcrypto...). Not
# `random` either: it reseeds itself in every forked child, about 40 copied pages per child
# (the cost of a run is mostly pages copied on write), which the few programs using it pay
# instead by importing it.
PRELOADED = (
    "bisect", "collections", "copy", "dataclasses", "functools", "heapq", "itertools", "math",
    "operator", "re", "string", "typing",
)  # fmt: skip
# Read-only for children besides the interpreter's own standard library.
SYSTEM_READABLE = (
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache", "/etc/localtime",
    "/dev/zero", "/dev/urandom", "/dev/random",
)  # fmt: skip
PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 38, 4
DISK_CHECK_S = 0.05
EXIT_PATIENCE_S = 0.2  # for the program's side to exit once the tests' side has
MAX_MESSAGE = 65_536
MIB = 1024 * 1024


def _stdlib_paths() -> list[str]:
    return [p for p in sys.path if p and os.path.exists(p)]


def _check_disk(path: str, cap: int) -> tuple[str, str]:
    """("disk", why) when the run's scratch dir is over its cap, else ("", "")."""
    try:
        used = usage(path)
    except OverCap as exc:
        return "disk", str(exc)
    if used > cap:
        return "disk", f"files in the scratch dir exceeded the {cap // MIB} MB disk limit"
    return "", ""


def _kill_group(pid: int) -> None:
    """The child's process group, and the child itself if it has not made its group yet."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class EngineGone(BaseException):
    """The engine closed its socket during a run: the run's usual cleanup takes its children
    down, then the server stops. A BaseException, so no handler of a failed run serves on."""


class Server:
    """Serves runs one at a time on `sock`; one server per core gives the parallelism."""

    def __init__(self, sock: socket.socket, base: str, layers: child.Layers) -> None:
        self.sock, self.base, self.layers = sock, base, layers
        os.chmod(base, 0o500)  # runs write in their own scratch dir only, even without Landlock
        self.queued: collections.deque[tuple[dict[str, Any], list[int]]] = collections.deque()

    @contextlib.contextmanager
    def _base_writable(self) -> Iterator[None]:
        os.chmod(self.base, 0o700)
        try:
            yield
        finally:
            os.chmod(self.base, 0o500)

    def close(self) -> None:
        """The engine is gone: remove the base dir, which an engine killed outright leaves
        behind (under bubblewrap it is a mount point, and only its contents go)."""
        with contextlib.suppress(OSError):
            remove(self.base)

    def serve_forever(self) -> None:
        while True:
            if self.queued:
                request, fds = self.queued.popleft()
            else:
                message, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 8)
                if not message:
                    self.close()
                    return  # the engine is gone
                request = json.loads(message)
                if "kill" in request:
                    continue  # for a run that already ended
            try:
                reply = self.run(request, fds)
            except EngineGone:
                self.close()
                return
            except Exception as exc:  # this run failed to start; the server serves the next
                reply = {"id": request.get("id"), "server_error": f"{type(exc).__name__}: {exc}"}
            self.sock.send(json.dumps(reply).encode())

    def run(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """Fork the run's child (two for a split run: program, then tests), set their limits,
        supervise them, clean up after them."""
        run_id, limits = request["id"], request["limits"]
        child_limits = ChildLimits(
            cpu_s=limits["cpu_s"],
            memory_mb=limits["memory_mb"],
            file_size_mb=limits["file_size_mb"],
            open_files=limits["open_files"],
        )
        started: list[tuple[int, str]] = []  # (pid, scratch dir)
        try:
            for role, placed in _children(request, fds):
                started.append(self._start(role, placed, request, child_limits))
            for fd in fds:  # now: a dead program must read as EOF on the tests' channel
                os.close(fd)
            fds = []
            return self._supervise(started, run_id, limits)
        except BaseException:  # e.g. the second child failed to start: none may outlive the run
            for pid, _ in started:
                _kill_group(pid)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            raise
        finally:
            for fd in fds:
                os.close(fd)
            for _, scratch in started:
                with self._base_writable():
                    remove(scratch)

    def _start(
        self, role: str, placed: dict[int, int], request: dict[str, Any], limits: ChildLimits
    ) -> tuple[int, str]:
        scratch = os.path.join(self.base, f"run-{os.urandom(8).hex()}")  # unguessable
        with self._base_writable():
            os.mkdir(scratch, 0o700)
        ruleset_fd = None
        go_read, go_write = os.pipe()
        try:
            # Set here, not in the child, where touching os.environ costs ~0.1 ms of copied pages.
            os.environ["HOME"] = os.environ["TMPDIR"] = scratch
            if self.layers.ruleset is not None:
                ruleset_fd = self.layers.ruleset.for_run(scratch, [os.devnull])
            spec = child.RunSpec(
                scratch=scratch,
                fds={**placed, child.GO_FD: go_read},
                ruleset_fd=ruleset_fd,
                limits=limits,
                nonce=str(request.get("nonce", "")),  # a split run's is in the tests' source
                server_pid=os.getpid(),
                probe=bool(request.get("probe", False)),
                role=role,
            )
            pid = os.fork()
            if pid == 0:
                try:
                    child.enter(spec, self.layers)
                finally:
                    os._exit(child.EXIT_SETUP_FAILED)
            try:
                rlimits.apply(pid, limits.plan())
                os.write(go_write, child.GO)
            except OSError:
                _kill_group(pid)  # it never runs the program without its limits
            return pid, scratch
        finally:
            for fd in [go_read, go_write, *([ruleset_fd] if ruleset_fd is not None else [])]:
                os.close(fd)

    def _supervise(
        self, children: list[tuple[int, str]], run_id: int, limits: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait for the last child (the one whose report decides); the others end with it."""
        started = time.monotonic()
        deadline = started + float(limits["timeout_s"])
        disk_cap = int(limits["disk_mb"]) * MIB
        next_disk_check = started + DISK_CHECK_S
        killed = why = ""
        pidfds = {os.pidfd_open(pid): pid for pid, _ in children}
        decider = children[-1][0]
        ended: dict[int, dict[str, Any]] = {}
        try:
            while decider not in ended:
                wait = max(0.0, min(deadline, next_disk_check) - time.monotonic())
                watched = [fd for fd, pid in pidfds.items() if pid not in ended]
                ready, _, _ = select.select([*watched, self.sock], [], [], wait)
                for fd in ready:
                    if fd in pidfds and pidfds[fd] not in ended:
                        ended[pidfds[fd]] = _reap(pidfds[fd])
                if self.sock in ready and self._message_during(run_id) and not killed:
                    killed = "engine"
                    _kill_all(children)
                now = time.monotonic()
                if now >= deadline and not killed:
                    killed = "timeout"
                    _kill_all(children)
                if now >= next_disk_check and not killed:
                    next_disk_check = now + DISK_CHECK_S
                    for _, scratch in children:
                        killed, why = _check_disk(scratch, disk_cap)
                        if killed:
                            _kill_all(children)
                            break
            for fd, pid in pidfds.items():  # the program's side ends by itself once the tests
                if pid not in ended:  # close the channel; what it was doing no longer matters
                    if not killed:
                        select.select([fd], [], [], EXIT_PATIENCE_S)
                    ended[pid] = _reap(pid)
        finally:
            for fd in pidfds:
                os.close(fd)
        reply = {
            "id": run_id,
            **ended[decider],
            "killed": killed,
            "why": why,
            "wall_s": round(time.monotonic() - started, 6),
        }
        if len(children) > 1:
            reply["program"] = ended[children[0][0]]
        return reply

    def _message_during(self, run_id: int) -> bool:
        """Read one message from the engine during a run: True if it asks to kill this run."""
        message, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 8)
        if not message:  # run() kills and reaps the children, and removes their scratch dirs
            raise EngineGone()
        request = json.loads(message)
        if "kill" not in request:
            self.queued.append((request, fds))  # the next run, sent ahead
            return False
        return bool(request["kill"] == run_id)


def _children(request: dict[str, Any], fds: list[int]) -> list[tuple[str, dict[int, int]]]:
    """Which children a request asks for, and which of its fds each gets at which number."""
    if request.get("split"):
        program, tests, stdout, stderr, report, program_end, tests_end = fds
        out = {child.STDOUT: stdout, child.STDERR: stderr}
        judged = {**out, child.PROGRAM_FD: tests, child.REPORT_FD: report}
        return [
            (child.PROGRAM, {**out, child.PROGRAM_FD: program, child.CHANNEL_FD: program_end}),
            (child.TESTS, {**judged, child.CHANNEL_FD: tests_end}),
        ]
    program, stdout, stderr, report = fds
    placed = {child.STDOUT: stdout, child.STDERR: stderr, child.PROGRAM_FD: program}
    return [(child.SINGLE, {**placed, child.REPORT_FD: report})]


def _kill_all(children: list[tuple[int, str]]) -> None:
    """The deciding child (the last) first: killed second, the tests' side could see the
    program's side die of our kill, and report that instead of the timeout or limit."""
    for pid, _ in reversed(children):
        _kill_group(pid)


def _reap(pid: int) -> dict[str, Any]:
    """How one child ended (killing what is left of it first)."""
    _kill_group(pid)  # anything left in its group, while the zombie still holds the id
    _, status, usage = os.wait4(pid, 0)
    return {
        "exit_code": os.waitstatus_to_exitcode(status),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
        "max_rss_kb": usage.ru_maxrss,
    }


def _probe(server: Server) -> dict[str, bool]:
    """Run one child through every layer and ask it which held."""
    program, empty = os.pipe()
    os.close(empty)  # the probe reads no program
    report_r, report_w = os.pipe()
    null_out = os.open(os.devnull, os.O_WRONLY)
    limits = {"cpu_s": 5, "memory_mb": 512, "file_size_mb": 1, "open_files": 64}
    request = {"id": 0, "probe": True, "limits": {**limits, "timeout_s": 10, "disk_mb": 1}}
    fds = [program, null_out, os.dup(null_out), report_w]
    reply = server.run(request, fds)
    data = os.read(report_r, MAX_MESSAGE)
    os.close(report_r)
    report = json.loads(data) if data else {}
    if reply["exit_code"] != 0 or report.get("phase") != "probe":
        raise RuntimeError(f"sandbox self-test failed: {reply} {report}")
    return report["layers"]


def _arguments(argv: list[str]) -> tuple[str, bool, int | None]:
    """`--base DIR [--no-landlock] [--cpu N]`: the engine's own command line (no argparse to
    carry: every module the server imports makes every fork dearer)."""
    usage = f"usage: start.py --base DIR [--no-landlock] [--cpu N], not {argv}"
    if len(argv) < 2 or argv[0] != "--base":
        raise SystemExit(usage)
    base, rest = argv[1], argv[2:]
    no_landlock = rest[:1] == ["--no-landlock"]
    rest = rest[1:] if no_landlock else rest
    cpu = None
    if rest[:1] == ["--cpu"] and len(rest) == 2 and rest[1].isdigit():
        cpu, rest = int(rest[1]), []
    if rest:
        raise SystemExit(usage)
    return base, no_landlock, cpu


def main(argv: list[str]) -> None:
    base, no_landlock, cpu = _arguments(argv)
    if cpu is not None:  # one server per core, each on its own: no migrations between runs
        os.sched_setaffinity(0, {cpu})
    child.reserve_low_fds()
    readable = [*_stdlib_paths(), *SYSTEM_READABLE]
    for name in PRELOADED:
        importlib.import_module(name)
    os.environ.clear()  # drop what locale coercion (PEP 538) added to the empty environment
    sock = socket.socket(fileno=0)
    abi = 0 if no_landlock else landlock.abi_version()
    ruleset = landlock.Ruleset(readable, abi) if abi else None
    if capabilities.held():  # root: the server itself gives them all up, for every child
        capabilities.drop_bounding_set()
        capabilities.drop_held()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)  # Landlock and seccomp need it; children inherit it
    libc.prctl(PR_SET_DUMPABLE, 0)  # no /proc/<server>/mem for anyone, where /proc is visible
    child_filter = None
    if seccomp.supported():
        seccomp.Filter(seccomp.server_blocks).install(os.getpid())
        child_filter = seccomp.Filter(seccomp.child_blocks)
    layers = child.Layers(ruleset=ruleset, seccomp=child_filter)
    server = Server(sock, os.path.realpath(base), layers)
    gc.freeze()  # children then never touch (and copy) the server's objects to collect them
    held = _probe(server)
    active = [name for name, ok in held.items() if ok]
    if "landlock-fs" in active:
        active += [layer for layer in landlock.layers(abi) if layer != "landlock-fs"]
    hello = {
        "hello": True,
        "pid": os.getpid(),
        "uid": os.geteuid(),
        "landlock_abi": abi,
        "arch": seccomp.machine(),
        "layers": active,
        "failed": [name for name, ok in held.items() if not ok],
    }
    sock.send(json.dumps(hello).encode())
    server.serve_forever()
