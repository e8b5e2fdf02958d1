"""Turn a freshly forked child into a sandboxed one, layer by layer, then run the program.

What a whole server can carry is done once in the server and inherited: no capabilities,
no_new_privs, the server-wide seccomp filter, an empty environment. Per child: its fds, its
own process group, its scratch dir, its Landlock ruleset, the short per-child seccomp filter;
the server sets its rlimits from outside and says go, and only then does the program run.
Every Python step in a fresh child costs copied pages, so this list is kept short.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
from dataclasses import dataclass
from typing import NoReturn

from . import capabilities, harness, judge, landlock, libc, seccomp, serve
from .rlimits import ChildLimits

STDOUT, STDERR, PROGRAM_FD, REPORT_FD, GO_FD, RULESET_FD, CHANNEL_FD = 1, 2, 3, 4, 5, 6, 7
HIGHEST_FIXED = CHANNEL_FD
NULL_FD = 3  # /dev/null in the server (reserve_low_fds): the child's stdin, then its program
# What a child runs: a whole program with its tests in one process (unsafe for verdicts), or one
# side of a split run: the program answering calls, or the tests calling it (judge.py).
SINGLE, PROGRAM, TESTS = "single", "program", "tests"
EXIT_SETUP_FAILED = 125
PR_SET_PDEATHSIG = 1
GO = b"1"


@dataclass(frozen=True)
class Layers:
    """Which layers this server applies to each child."""

    ruleset: landlock.Ruleset | None
    seccomp: seccomp.Filter | None


@dataclass(frozen=True)
class RunSpec:
    """One run as the child sees it: where, with which fds, under which limits."""

    scratch: str
    fds: dict[int, int]  # fixed number -> the server's fd; GO_FD: the server's "limits are set"
    ruleset_fd: int | None
    limits: ChildLimits
    nonce: str
    server_pid: int
    probe: bool = False
    role: str = SINGLE


def reserve_low_fds() -> None:
    """In the server, at start: hold fds 3..HIGHEST_FIXED open on /dev/null, so every fd it later
    receives or opens is above the numbers a child places its fds at, and the child can dup2
    straight into place (fd 3 doubles as the child's stdin)."""
    while (fd := os.open(os.devnull, os.O_RDONLY)) <= HIGHEST_FIXED:
        pass
    os.close(fd)


def _place_fds(fds: dict[int, int], ruleset: int | None) -> None:
    """Move the run's fds to fixed numbers and close everything else (the server's socket too)."""
    wanted = {**fds, **({RULESET_FD: ruleset} if ruleset is not None else {})}
    if min(wanted.values()) <= HIGHEST_FIXED:
        raise RuntimeError("a run's fd collides with the fixed numbers (reserve_low_fds)")
    os.dup2(NULL_FD, 0)
    for target, fd in wanted.items():
        os.dup2(fd, target)
    for unused in set(range(PROGRAM_FD, HIGHEST_FIXED + 1)) - set(wanted):
        os.close(unused)  # e.g. no report fd for the program's side of a split run
    os.closerange(HIGHEST_FIXED + 1, os.sysconf("SC_OPEN_MAX"))


def isolate(spec: RunSpec, layers: Layers) -> None:
    """Apply every per-child layer; raises if any of them cannot be applied."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # if the server dies, so does the run
    if os.getppid() != spec.server_pid:
        raise RuntimeError("the fork server died during setup")
    os.setsid()  # own process group: the server kills the whole group
    os.chdir(spec.scratch)
    if spec.ruleset_fd is not None:
        landlock.restrict_self(RULESET_FD)
        os.close(RULESET_FD)
    if layers.seccomp is not None:
        layers.seccomp.install(os.getpid())
    if os.read(GO_FD, 1) != GO:  # the server has set this process's rlimits
        raise RuntimeError("the fork server did not set the run's limits")
    os.close(GO_FD)


def enter(spec: RunSpec, layers: Layers) -> NoReturn:
    """In the forked child: isolate, then run the program (or, for a probe, test the layers)."""
    try:
        _place_fds(spec.fds, spec.ruleset_fd)
        isolate(spec, layers)
        if spec.probe:
            _probe(layers)
    except BaseException as exc:  # the setup failed: say so, never run the program unconfined
        report_setup_failure(exc, spec.nonce, to_stderr=spec.role == PROGRAM)
        os._exit(EXIT_SETUP_FAILED)
    if spec.role == PROGRAM:
        serve.serve(PROGRAM_FD, CHANNEL_FD, spec.limits.open_files)
    if spec.role == TESTS:
        judge.judge(PROGRAM_FD, REPORT_FD, CHANNEL_FD)
    harness.run(PROGRAM_FD, REPORT_FD, spec.nonce, spec.limits.open_files)


def _probe(layers: Layers) -> NoReturn:
    """Check from inside that the layers hold, and report which do."""
    limited = resource.getrlimit(resource.RLIMIT_AS)[1] != resource.RLIM_INFINITY
    limited = limited and resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)
    found: dict[str, bool] = {"no-capabilities": not capabilities.held(), "rlimits": limited}
    if layers.ruleset is not None:
        found["landlock-fs"] = _refused(lambda: open("/proc/self/status", "rb").close())
    if layers.seccomp is not None:
        found["seccomp"] = _refused(lambda: socket.socket(socket.AF_UNIX).close())
    os.write(REPORT_FD, json.dumps({"phase": "probe", "layers": found}).encode())
    os._exit(0)


def _refused(action: object) -> bool:
    try:
        action()  # type: ignore[operator]
    except PermissionError:
        return True
    return False


def report_setup_failure(exc: BaseException, nonce: str, to_stderr: bool = False) -> None:
    message = {"phase": "setup", "type": type(exc).__name__, "message": str(exc)[:500]}
    if not to_stderr:  # the program's side of a split run has no report to write
        try:
            os.write(REPORT_FD, json.dumps({**message, "nonce": nonce}).encode())
            return
        except OSError:
            pass
    os.write(STDERR, f"aimesh sandbox setup failed: {message}\n".encode())
