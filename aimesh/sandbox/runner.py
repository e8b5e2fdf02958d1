"""Run code against its tests through a fork server and say how it ended.

Two modes. `run_tests` (the default for every verdict) splits a run in two jailed processes:
the program answers calls, the tests make them through a proxy and alone write the report
(jail/judge.py), so nothing the program does can fake a pass. `run_program` runs one program,
tests included, in one process: the program can reach its own report there, so that mode is
unsafe for verdicts and serves whole-program runs (the attack suites, `aimesh sandbox` without
tests).

The engine owns the run's pipes: it hands the write ends (and the sources, in memfds) to the
server with the request, reads stdout and stderr itself under the output cap, and asks the
server to kill the run when a stream goes over it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

from aimesh.sandbox.classify import STATUSES, classify
from aimesh.sandbox.forkserver import ForkServer, ForkServerError
from aimesh.sandbox.limits import Limits
from aimesh.sandbox.pool import ServerPool, pool
from aimesh.sandbox.program import split_sources

SPLIT, SAME_PROCESS = "split", "same-process (unsafe for verdicts)"

_MAX_REPORT_BYTES = 64_000
_READ_CHUNK = 65_536
_DRAIN_S = 2.0  # after the reply, how long the pipes may take to reach EOF
_BACKSTOP_S = 10.0  # a server silent this long past the run's timeout is broken
_run_ids = itertools.count(1)


@dataclass(frozen=True)
class RunResult:
    """How a run ended; `passed` always mirrors `status == "passed"`."""

    status: str
    passed: bool = False
    exit_code: int | None = None
    error_type: str = ""
    error: str = ""
    error_line: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    layers: tuple[str, ...] = ()
    mode: str = SPLIT

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        object.__setattr__(self, "passed", self.status == "passed")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, e.g. to build a Verdict record."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        return data


class _Drain:
    """Reads one pipe to EOF, keeping its last `cap` bytes; calls `on_overflow` once past it."""

    def __init__(self, fd: int, cap: int, on_overflow: Any = None) -> None:
        self.fd, self.cap, self.on_overflow = fd, cap, on_overflow
        self.tail = bytearray()
        self.total = 0
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        os.set_blocking(fd, False)
        self.loop.add_reader(fd, self._read)

    @property
    def overflowed(self) -> bool:
        return self.total > self.cap

    def _read(self) -> None:
        try:
            chunk = os.read(self.fd, _READ_CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            self.close()
            return
        was_over = self.overflowed
        self.total += len(chunk)
        self.tail += chunk
        if len(self.tail) > self.cap:
            del self.tail[: len(self.tail) - self.cap]
        if self.overflowed and not was_over and self.on_overflow is not None:
            self.on_overflow()

    def close(self) -> None:
        if not self.done.done():
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.done.set_result(None)

    def text(self) -> str:
        return self.tail.decode("utf-8", errors="replace")


def _program_fd(program: str, name: str = "program.py") -> int:
    """The program in an anonymous file: any size, and the server never holds its text."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    data = program.encode("utf-8", errors="replace")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _request(run_id: int, limits: Limits) -> dict[str, Any]:
    fields = ("timeout_s", "cpu_s", "memory_mb", "file_size_mb", "disk_mb", "open_files")
    limit_values = {name: getattr(limits, name) for name in fields}
    return {"id": run_id, "limits": limit_values}


def _parse_report(data: bytes, nonce: str) -> dict[str, Any] | None:
    """The harness's report; anything else on the pipe (without the run's nonce) is ignored."""
    try:
        report = json.loads(data)
    except ValueError:
        return None
    if not isinstance(report, dict) or report.get("nonce") != nonce:
        return None
    return report


async def _exchange(
    server: ForkServer, request: dict[str, Any], fds: list[int], drains: list[_Drain]
) -> dict[str, Any]:
    """Send the run (then drop our copies of its fds, so EOF can come) and await the reply."""
    run_id = request["id"]
    patience = server.queued_s() + request["limits"]["timeout_s"] + _BACKSTOP_S
    try:
        server.send(request, fds)
    finally:
        for fd in fds:
            os.close(fd)
    try:
        async with asyncio.timeout(patience):
            reply = await server.reply(run_id)
    except TimeoutError:
        raise ForkServerError(f"the sandbox server did not answer run {run_id}") from None
    except asyncio.CancelledError:
        server.abandon(run_id)  # kill it; the server goes on with the others sent to it
        raise
    if "server_error" in reply:
        raise ForkServerError(
            f"the sandbox server could not start run {run_id}: {reply['server_error']}"
        )
    if not all(d.done.done() for d in drains):
        await asyncio.wait([d.done for d in drains], timeout=_DRAIN_S)
    return reply


def _read_report(fd: int, in_place: bool) -> bytes:
    """The report after the run: the child is gone, so whatever it wrote is there now (a pipe,
    or, `in_place`, the memfd a split run's tests rewrite, read from its start)."""
    if in_place:
        return os.pread(fd, _MAX_REPORT_BYTES, 0)
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    while size < _MAX_REPORT_BYTES:
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:_MAX_REPORT_BYTES]


async def run_program(
    program: str,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    servers: ServerPool | None = None,
) -> RunResult:
    """Run `program` (code plus tests, see build_program) in one process and classify the
    outcome. Unsafe for verdicts: see the module's docstring; `run_tests` is the safe mode.

    Problems in the program are results; a sandbox that cannot start or isolate raises.
    `servers` defaults to the process-wide pool.
    """
    report_read, report_write = os.pipe()
    nonce = secrets.token_hex(16)
    before, after = [_program_fd(program)], [report_write]
    run = _Run(before, after, report_read, {"nonce": nonce}, nonce, SAME_PROCESS)
    return await _run(run, limits, servers)


async def run_tests(
    code: str,
    tests: str,
    entry_point: str | None = None,
    preamble: str = "",
    limits: Limits = Limits(),  # noqa: B008 - frozen
    servers: ServerPool | None = None,
) -> RunResult:
    """Judge `code` against `tests` with the tests in a process of their own (the split mode):
    the task's `preamble` runs on both sides, the tests call the program's functions through a
    proxy, and only plain data crosses. `servers` defaults to the process-wide pool."""
    # The nonce travels inside the tests' source: not even the fork server, whose memory the
    # program's process is forked from, ever holds it.
    nonce = secrets.token_hex(16)
    program_source, tests_source = split_sources(code, tests, entry_point, preamble, nonce)
    report = os.memfd_create("report", os.MFD_CLOEXEC)  # rewritten in place by the tests
    program_end, tests_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    before = [_program_fd(program_source), _program_fd(tests_source, "tests.py")]
    after = [report, program_end.detach(), tests_end.detach()]
    run = _Run(before, after, os.dup(report), {"split": True}, nonce, SPLIT)
    return await _run(run, limits, servers)


@dataclass
class _Run:
    """The fds the server gets before and after stdout and stderr (the order its `_children`
    unpacks), where the report is read once the run is over, and what the request adds."""

    before: list[int]
    after: list[int]
    report: int
    extra: dict[str, Any]
    nonce: str
    mode: str


async def _run(run: _Run, limits: Limits, servers: ServerPool | None) -> RunResult:
    servers = servers or pool()
    run_id = next(_run_ids)
    started = time.perf_counter()
    readers: list[int] = []
    outputs: list[int] = []
    fds = [*run.before, *run.after]
    try:
        for _ in range(2):  # stdout, stderr
            read_end, write_end = os.pipe()
            readers.append(read_end)
            outputs.append(write_end)
        fds = [*run.before, *outputs, *run.after]
        outputs = []
    finally:
        for fd in outputs:
            os.close(fd)
    drains: list[_Drain] = []
    try:
        async with servers.server() as server:
            kill = lambda: server.kill_run(run_id)  # noqa: E731
            drains = [
                _Drain(readers[0], limits.output_bytes, kill),
                _Drain(readers[1], limits.output_bytes, kill),
            ]
            readers = []
            sent, fds = fds, []
            request = {**_request(run_id, limits), **run.extra}
            reply = await _exchange(server, request, sent, drains)
            data = _read_report(run.report, in_place=run.mode == SPLIT)
            report = _parse_report(data, run.nonce) if data else None
    finally:
        for fd in [*fds, *readers, run.report]:
            os.close(fd)
        for drain in drains:
            drain.close()
    overflow = next(
        (name for name, d in zip(("stdout", "stderr"), drains, strict=True) if d.overflowed), ""
    )
    outcome = classify(reply, report, overflow, limits)
    return RunResult(
        status=outcome.status,
        exit_code=reply.get("exit_code"),
        error_type=outcome.error_type,
        error=outcome.error,
        error_line=outcome.error_line,
        stdout=drains[0].text(),
        stderr=drains[1].text(),
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        layers=tuple(servers.layers),
        mode=run.mode,
    )


async def active_layers(servers: ServerPool | None = None) -> list[str]:
    """The layers every run gets here (starting a server to find out, the first time)."""
    servers = servers or pool()
    if not servers.layers:
        async with servers.server():
            pass
    return list(servers.layers)
