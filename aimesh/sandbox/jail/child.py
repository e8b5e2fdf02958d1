"""Turn a freshly forked child into a sandboxed one, layer by layer, then run the program.

Order matters: fds and the scratch dir first (they need the server's rights), then rlimits,
then capabilities, then Landlock and seccomp (each needs no_new_privs), and the address-space
limit last but one so the steps before it may still allocate.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import socket
from dataclasses import dataclass
from typing import NoReturn

from . import capabilities, harness, landlock, libc, seccomp

STDOUT, STDERR, PROGRAM_FD, REPORT_FD, RULESET_FD = 1, 2, 3, 4, 5
_HIGH_FD = 100
EXIT_SETUP_FAILED = 125
PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG = 38, 1
MIB = 1024 * 1024


@dataclass(frozen=True)
class ChildLimits:
    """The rlimits of one run (the wall clock and the disk cap are the server's to enforce)."""

    cpu_s: int
    memory_mb: int
    file_size_mb: int
    open_files: int


@dataclass(frozen=True)
class Layers:
    """Which layers this server applies to each child."""

    ruleset: landlock.Ruleset | None
    seccomp: seccomp.Filter | None
    drop_capabilities: bool  # the server dropped the bounding set; the child drops the rest


@dataclass(frozen=True)
class RunSpec:
    """One run as the child sees it: where, with which fds, under which limits."""

    scratch: str
    fds: list[int]  # program, stdout, stderr, report
    ruleset_fd: int | None
    limits: ChildLimits
    nonce: str
    server_pid: int
    probe: bool = False


def _place_fds(program: int, stdout: int, stderr: int, report: int, ruleset: int | None) -> None:
    """Move the run's fds to fixed numbers and close everything else (the server's socket too)."""
    wanted = {STDOUT: stdout, STDERR: stderr, PROGRAM_FD: program, REPORT_FD: report}
    if ruleset is not None:
        wanted[RULESET_FD] = ruleset
    high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, _HIGH_FD) for target, fd in wanted.items()}
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for target, fd in high.items():
        os.dup2(fd, target)
    os.closerange(max(wanted) + 1, os.sysconf("SC_OPEN_MAX"))  # the high copies too


def _set_rlimits(limits: ChildLimits) -> None:
    """Cap what the program may use; RLIMIT_AS last, once the setup's allocations are done."""
    plan = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * MIB),
    ]
    for res, value in plan:
        _lower(res, value, value)
    _lower(resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1)


def _lower(res: int, soft: int, hard: int) -> None:
    ceiling = resource.getrlimit(res)[1]
    if ceiling != resource.RLIM_INFINITY:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    resource.setrlimit(res, (soft, hard))


def isolate(spec: RunSpec, layers: Layers) -> None:
    """Apply every layer to this process; raises if any of them cannot be applied."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # if the server dies, so does the run
    if os.getppid() != spec.server_pid:
        raise RuntimeError("the fork server died during setup")
    os.setsid()  # own process group: the server kills the whole group
    os.chdir(spec.scratch)
    _set_rlimits(spec.limits)
    if layers.drop_capabilities:
        capabilities.drop_held()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    if spec.ruleset_fd is not None:
        landlock.restrict_self(RULESET_FD)
        os.close(RULESET_FD)
    memory = spec.limits.memory_mb * MIB
    _lower(resource.RLIMIT_AS, memory, memory)
    if layers.seccomp is not None:
        layers.seccomp.install(os.getpid())


def enter(spec: RunSpec, layers: Layers) -> NoReturn:
    """In the forked child: isolate, then run the program (or, for a probe, test the layers)."""
    try:
        _place_fds(*spec.fds, spec.ruleset_fd)
        isolate(spec, layers)
        if spec.probe:
            _probe(layers)
    except BaseException as exc:  # the setup failed: say so, never run the program unconfined
        report_setup_failure(exc, spec.nonce)
        os._exit(EXIT_SETUP_FAILED)
    harness.run(PROGRAM_FD, REPORT_FD, spec.nonce, spec.limits.open_files)


def _probe(layers: Layers) -> NoReturn:
    """Check from inside that the layers hold, and report which do."""
    found: dict[str, bool] = {"capabilities": not capabilities.held()}
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


def report_setup_failure(exc: BaseException, nonce: str) -> None:
    message = {"phase": "setup", "type": type(exc).__name__, "message": str(exc)[:500]}
    message["nonce"] = nonce
    try:
        os.write(REPORT_FD, json.dumps(message).encode())
    except OSError:
        os.write(STDERR, f"aimesh sandbox setup failed: {message}\n".encode())
