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

import argparse
import collections
import gc
import importlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import sys
import time
from typing import Any

from . import capabilities, child, landlock, seccomp

# Imported once here, so a child pays nothing for the usual suspects (HumanEval uses most).
PRELOADED = (
    "abc", "array", "bisect", "cmath", "collections", "contextlib", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "itertools",
    "json", "math", "numbers", "operator", "random", "re", "statistics", "string", "struct",
    "textwrap", "time", "typing", "unicodedata",
)  # fmt: skip
# Read-only for children besides the interpreter's own standard library.
SYSTEM_READABLE = (
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache", "/etc/localtime",
    "/dev/zero", "/dev/urandom", "/dev/random",
)  # fmt: skip
DISK_CHECK_S = 0.05
MAX_SCRATCH_ENTRIES = 10_000
MAX_MESSAGE = 65_536
MIB = 1024 * 1024


def _stdlib_paths() -> list[str]:
    return [p for p in sys.path if p and os.path.exists(p)]


def _scratch_usage(path: str) -> tuple[int, int]:
    """(bytes allocated, entries) under `path`, stopping early past MAX_SCRATCH_ENTRIES."""
    total, entries, pending = 0, 0, [path]
    while pending and entries <= MAX_SCRATCH_ENTRIES:
        try:
            with os.scandir(pending.pop()) as it:
                for entry in it:
                    entries += 1
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except OSError:
            continue
    return total, entries


def _remove_scratch(path: str) -> None:
    try:
        os.rmdir(path)  # the common case: the program left nothing behind
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Server:
    """Serves runs one at a time on `sock`; one server per core gives the parallelism."""

    def __init__(self, sock: socket.socket, base: str, layers: child.Layers) -> None:
        self.sock, self.base, self.layers = sock, base, layers
        self.queued: collections.deque[tuple[dict[str, Any], list[int]]] = collections.deque()

    def serve_forever(self) -> None:
        while True:
            if self.queued:
                request, fds = self.queued.popleft()
            else:
                message, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 8)
                if not message:
                    return  # the engine is gone
                request = json.loads(message)
                if "kill" in request:
                    continue  # for a run that already ended
            try:
                reply = self.run(request, fds)
            except Exception as exc:  # this run failed to start; the server serves the next
                reply = {"id": request.get("id"), "server_error": f"{type(exc).__name__}: {exc}"}
            self.sock.send(json.dumps(reply).encode())

    def run(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """Fork one child for `request`, supervise it, clean up after it."""
        run_id, limits = request["id"], request["limits"]
        scratch = ruleset_fd = None
        try:
            scratch = os.path.join(self.base, f"run-{secrets.token_hex(8)}")  # unguessable
            os.mkdir(scratch, 0o700)
            # Set here, not in the child, where touching os.environ costs ~0.1 ms of copied pages.
            os.environ["HOME"] = os.environ["TMPDIR"] = scratch
            if self.layers.ruleset is not None:
                ruleset_fd = self.layers.ruleset.for_run(scratch, [os.devnull])
            spec = child.RunSpec(
                scratch=scratch,
                fds=fds,
                ruleset_fd=ruleset_fd,
                limits=child.ChildLimits(
                    cpu_s=limits["cpu_s"],
                    memory_mb=limits["memory_mb"],
                    file_size_mb=limits["file_size_mb"],
                    open_files=limits["open_files"],
                ),
                nonce=str(request.get("nonce", "")),
                server_pid=os.getpid(),
                probe=bool(request.get("probe", False)),
            )
            pid = os.fork()
            if pid == 0:
                try:
                    child.enter(spec, self.layers)
                finally:
                    os._exit(child.EXIT_SETUP_FAILED)
            return self._supervise(pid, run_id, scratch, limits)
        finally:
            for fd in [*fds, *([ruleset_fd] if ruleset_fd is not None else [])]:
                os.close(fd)
            if scratch is not None:
                _remove_scratch(scratch)

    def _supervise(self, pid: int, run_id: int, scratch: str, limits: dict[str, Any]) -> dict:
        started = time.monotonic()
        deadline = started + float(limits["timeout_s"])
        disk_cap = int(limits["disk_mb"]) * MIB
        next_disk_check = started + DISK_CHECK_S
        killed = ""
        pidfd = os.pidfd_open(pid)
        try:
            while True:
                wait = max(0.0, min(deadline, next_disk_check) - time.monotonic())
                ready, _, _ = select.select([pidfd, self.sock], [], [], wait)
                if pidfd in ready:
                    break
                if self.sock in ready:
                    message, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 8)
                    if not message:  # the engine is gone: take the child with us
                        _kill_group(pid)
                        os.waitpid(pid, 0)
                        raise SystemExit(0)
                    request = json.loads(message)
                    if "kill" not in request:
                        self.queued.append((request, fds))  # the next run, sent ahead
                    elif request["kill"] == run_id and not killed:
                        killed = "engine"
                        _kill_group(pid)
                now = time.monotonic()
                if now >= deadline and not killed:
                    killed = "timeout"
                    _kill_group(pid)
                if now >= next_disk_check:
                    next_disk_check = now + DISK_CHECK_S
                    used, entries = _scratch_usage(scratch)
                    if (used > disk_cap or entries > MAX_SCRATCH_ENTRIES) and not killed:
                        killed = "disk"
                        _kill_group(pid)
            _kill_group(pid)  # anything left in its group, while the zombie still holds the id
            _, status, usage = os.wait4(pid, 0)
        finally:
            os.close(pidfd)
        return {
            "id": run_id,
            "exit_code": os.waitstatus_to_exitcode(status),
            "killed": killed,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
            "max_rss_kb": usage.ru_maxrss,
            "wall_s": round(time.monotonic() - started, 6),
        }


def _probe(server: Server) -> dict[str, bool]:
    """Run one child through every layer and ask it which held."""
    program = os.memfd_create("probe")
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


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="aimesh-fork-server")
    parser.add_argument("--base", required=True, help="directory for the runs' scratch dirs")
    parser.add_argument("--no-landlock", action="store_true", help="isolation is outside (bwrap)")
    args = parser.parse_args(argv)
    readable = [*_stdlib_paths(), *SYSTEM_READABLE]
    for name in PRELOADED:
        importlib.import_module(name)
    os.environ.clear()  # drop what locale coercion (PEP 538) added to the empty environment
    sock = socket.socket(fileno=0)
    abi = 0 if args.no_landlock else landlock.abi_version()
    ruleset = landlock.Ruleset(readable, abi) if abi else None
    drop_capabilities = capabilities.held()
    if drop_capabilities:
        capabilities.drop_bounding_set()
    child_filter = None
    if seccomp.supported():
        seccomp.Filter(seccomp.server_blocks).install(os.getpid())
        child_filter = seccomp.Filter(seccomp.child_blocks)
    layers = child.Layers(
        ruleset=ruleset, seccomp=child_filter, drop_capabilities=drop_capabilities
    )
    server = Server(sock, os.path.realpath(args.base), layers)
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
