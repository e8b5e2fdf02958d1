"""Run one program in a child Python under rlimits, and say how it ended in terms an LLM can use.

First version: isolation is rlimits, an empty environment, a scratch cwd and a process group
that is always killed. It is not a security boundary against hostile code (no namespaces,
Landlock or seccomp yet).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aimesh.sandbox.limits import Limits

STATUSES = ("passed", "failed", "error", "timeout", "limit")
# What this runner does to contain a program, named as verdicts and `aimesh sandbox` report it.
LAYERS = ("empty-env", "scratch-dir", "rlimits", "wall-timeout", "output-cap", "group-kill")

_PROGRAM = "program.py"
_HARNESS = "harness.py"
_PYTHON_FLAGS = ("-I", "-S")  # isolated (no PYTHON* vars, no user site) and no site-packages
_RESULT = ".aimesh-result.json"  # dot-named, so a program's own files rarely collide
_MAX_REPORT_BYTES = 64_000
_READ_CHUNK = 65_536
_DRAIN_S = 2.0  # after the kill, how long to wait for the pipes to reach EOF
_POLL_S = (0.0005, 0.05)  # first and largest exit-poll interval


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

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        object.__setattr__(self, "passed", self.status == "passed")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, e.g. to build a Verdict record."""
        return asdict(self)


@dataclass(frozen=True)
class _Outcome:
    status: str
    error_type: str = ""
    error: str = ""
    error_line: int | None = None


class _Capture:
    """The last `cap` bytes of one stream, and whether the stream went past the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.tail = bytearray()
        self.total = 0

    @property
    def overflowed(self) -> bool:
        return self.total > self.cap

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.tail += chunk
        if len(self.tail) > self.cap:
            del self.tail[: len(self.tail) - self.cap]

    def text(self) -> str:
        return self.tail.decode("utf-8", errors="replace")


@functools.cache
def _harness_source() -> str:
    return Path(__file__).with_name("_harness.py").read_text(encoding="utf-8")


def _rlimit_plan(limits: Limits) -> list[tuple[int, int, int]]:
    """(resource, soft, hard), clamped to our own hard limits, which a child cannot raise.

    RLIMIT_AS comes last: once it is set, the forked child should allocate as little as possible.
    """
    mib = 1024 * 1024
    wanted = [
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * mib, limits.file_size_mb * mib),
        (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),
        (resource.RLIMIT_AS, limits.memory_mb * mib, limits.memory_mb * mib),
    ]
    plan = []
    for res, soft, hard in wanted:
        ceiling = resource.getrlimit(res)[1]
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        plan.append((res, soft, hard))
    return plan


def _preexec(plan: list[tuple[int, int, int]]) -> Callable[[], None]:
    """Runs between fork and exec, so it only calls setrlimit: no imports, no locks."""

    def apply() -> None:
        for res, soft, hard in plan:
            resource.setrlimit(res, (soft, hard))

    return apply


async def _pump(stream: asyncio.StreamReader, capture: _Capture, over: asyncio.Event) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        capture.add(chunk)
        if capture.overflowed:
            over.set()


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """Wait for the child itself to exit.

    Not `proc.wait()`: on Python 3.11 that also waits for the pipes to close, which a grandchild
    holding stdout would delay until the wall timeout. Where the kernel has pidfds, the exit is an
    event (no polling delay on a ~30 ms run); the return code then follows within a poll or two.
    """
    if hasattr(os, "pidfd_open") and proc.returncode is None:
        await _pidfd_readable(proc.pid)
    delay, most = _POLL_S
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, most)
    return proc.returncode


async def _pidfd_readable(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already, or no pidfd support: polling alone will do
        return
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # group already gone (PermissionError: macOS, for a group of zombies)


def _read_report(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(_MAX_REPORT_BYTES))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(message: str, report: dict[str, Any]) -> str:
    """`message at line N: <statement>`, plus the test statement that led there if different."""
    where = ""
    line, text = report.get("line"), report.get("text")
    if line:
        where = f"line {line}: {text}" if text else f"line {line}"
        origin_line, origin_text = report.get("origin_line"), report.get("origin_text")
        if origin_line and origin_text:
            where += f" (from line {origin_line}: {origin_text})"
    if message and where:
        return f"{message} at {where}"
    return message or where


def _line(report: dict[str, Any]) -> int | None:
    line = report.get("line")
    return line if isinstance(line, int) and not isinstance(line, bool) else None


def _from_report(report: dict[str, Any], exit_code: int, limits: Limits) -> _Outcome:
    kind = str(report.get("type") or "")
    message = str(report.get("message") or "")
    line = _line(report)
    if not kind:
        if exit_code == 0:
            return _Outcome("passed")
        return _Outcome("error", "HarnessError", f"harness reported success but exited {exit_code}")
    if kind == "AssertionError":
        return _Outcome("failed", kind, _describe(message, report), line)
    if kind == "MemoryError":
        message = message or f"memory limit of {limits.memory_mb} MB exceeded"
        return _Outcome("limit", kind, _describe(message, report), line)
    if report.get("errno") == errno.EFBIG:
        message = f"file size limit of {limits.file_size_mb} MB exceeded ({kind}: {message})"
        return _Outcome("limit", "FileSizeLimit", _describe(message, report), line)
    if kind == "SystemExit":
        text = _describe(f"SystemExit({message})", report) + "; exiting early skips the tests"
        return _Outcome("error", kind, text, line)
    return _Outcome("error", kind, _describe(message, report), line)


def _classify(
    exit_code: int | None,
    report: dict[str, Any] | None,
    *,
    timed_out: bool,
    overflow: str,
    elapsed_s: float,
    limits: Limits,
) -> _Outcome:
    """Decide the status; our own kills (output cap, wall clock) take precedence over the rest."""
    if overflow:
        msg = f"{overflow} exceeded the {limits.output_bytes}-byte output limit"
        return _Outcome("limit", "OutputLimit", msg)
    if timed_out:
        return _Outcome("timeout", "Timeout", f"wall-clock timeout after {limits.timeout_s:g}s")
    if exit_code is None:  # killed, then never reaped within the drain window
        return _Outcome("error", "Unknown", "the process did not report an exit status")
    if exit_code < 0:
        sig = -exit_code
        name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
        # SIGKILL that we did not send: the CPU hard limit, if enough time passed for it.
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and elapsed_s >= limits.cpu_s):
            return _Outcome("timeout", "CPULimit", f"CPU time limit of {limits.cpu_s}s exceeded")
        if sig == signal.SIGXFSZ:
            msg = f"file size limit of {limits.file_size_mb} MB exceeded"
            return _Outcome("limit", "FileSizeLimit", msg)
        return _Outcome("error", name, f"process killed by {name}")
    if report is not None:
        return _from_report(report, exit_code, limits)
    if exit_code == 0:  # os._exit(0) or similar: the harness never got to say the tests ran
        msg = "program exited with status 0 before the tests finished (os._exit?)"
        return _Outcome("error", "SystemExit", msg)
    msg = f"exited with status {exit_code} and no report (os._exit, or a failed start: see stderr)"
    return _Outcome("error", "SystemExit", msg)


def _prepare_scratch(program: str) -> str:
    scratch = tempfile.mkdtemp(prefix="aimesh-sbx-")
    try:
        Path(scratch, _PROGRAM).write_text(program, encoding="utf-8", errors="replace")
        Path(scratch, _HARNESS).write_text(_harness_source(), encoding="utf-8")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch


async def run_program(program: str, limits: Limits = Limits()) -> RunResult:  # noqa: B008
    """Run `program` (code plus tests, see build_program) once and classify the outcome.

    Problems in the program are results; only failing to start the child raises.
    """
    if not sys.executable:
        raise RuntimeError("sys.executable is unknown; cannot start the sandbox interpreter")
    for stream in (sys.stdout, sys.stderr):  # nothing of ours may be buffered across a fork
        if stream is not None:
            stream.flush()

    scratch = _prepare_scratch(program)
    captures = {"stdout": _Capture(limits.output_bytes), "stderr": _Capture(limits.output_bytes)}
    over = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []
    proc: asyncio.subprocess.Process | None = None
    started = time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *_PYTHON_FLAGS,
            _HARNESS,
            _PROGRAM,
            _RESULT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=scratch,
            env={},
            start_new_session=True,
            preexec_fn=_preexec(_rlimit_plan(limits)),
        )
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(_pump(proc.stdout, captures["stdout"], over)),
            asyncio.create_task(_pump(proc.stderr, captures["stderr"], over)),
        ]
        exit_task = asyncio.create_task(_exited(proc))
        over_task = asyncio.create_task(over.wait())
        tasks = [*readers, exit_task, over_task]

        await asyncio.wait(
            [exit_task, over_task], timeout=limits.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        timed_out = not exit_task.done() and not over.is_set()
        _kill_group(proc.pid)  # also takes down anything the program forked
        await asyncio.wait([exit_task, *readers], timeout=_DRAIN_S)
        elapsed = time.perf_counter() - started

        overflow = next((name for name, cap in captures.items() if cap.overflowed), "")
        outcome = _classify(
            proc.returncode,
            _read_report(os.path.join(scratch, _RESULT)),
            timed_out=timed_out,
            overflow=overflow,
            elapsed_s=elapsed,
            limits=limits,
        )
        return RunResult(
            status=outcome.status,
            exit_code=proc.returncode,
            error_type=outcome.error_type,
            error=outcome.error,
            error_line=outcome.error_line,
            stdout=captures["stdout"].text(),
            stderr=captures["stderr"].text(),
            duration_ms=round(elapsed * 1000, 3),
        )
    finally:
        if proc is not None:
            _kill_group(proc.pid)
        for task in tasks:
            task.cancel()
        shutil.rmtree(scratch, ignore_errors=True)
