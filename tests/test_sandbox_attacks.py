"""Hostile programs against the sandbox: each must be refused or capped, and leave the host alone.

The sandbox runs code a model wrote, so it has to hold against code written to break out, not
only against honest mistakes. Each case is one attack a user (or a model) could submit. It checks
the status the verdict reports and that the error names what was refused; that nothing changed on
the host (listeners the test opened got no connection or datagram, files outside the scratch dir
are untouched and unread, a host process lives on, the fork server survives); and that the same
pool then runs an ordinary program, with nothing left behind from the attack.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import pytest

import aimesh
from aimesh.sandbox import Limits, RunResult, run_program, run_tests

REPO_ROOT = Path(aimesh.__file__).resolve().parents[1]
LIMITS = Limits(timeout_s=3, cpu_s=2)
PTRACE = {"x86_64": 101, "aarch64": 117}  # the kernel's numbers, independent of the jail's table
SECRET_FILE, UNIX_SOCKET = "victim.txt", "unix.sock"
# Calls a libc function and raises OSError when it fails; on success the attack asserts False,
# so a call that got through reads as `failed`, one refused with EPERM as `forbidden`.
LIBC = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)


def checked(result):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
"""
# Creates a SysV IPC object through libc; prints its id (and removes it) if that went through.
SYSV = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
ipc = libc.{call}
if ipc >= 0:
    print(f'ipc-id={{ipc}}')
    libc.{remove}(ipc, 0, None)  # IPC_RMID
    assert False, 'the IPC object was created'
raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
"""
HEALTH_PROGRAM = """
import os
print('ok')
print(os.getcwd())
assert sum([1, 2]) == 3
"""


def _alive(pid: int) -> bool:
    """True if pid runs and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _file_state(path: Path) -> tuple[Any, ...]:
    """Everything an attack could change about a file: content, mode, times, links, xattrs."""
    st = path.stat()
    try:
        xattrs = sorted(os.listxattr(path))
    except OSError:
        xattrs = None
    return (path.read_bytes(), st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink, xattrs)


class Host:
    """What an attack aims at outside the sandbox: sockets, a process, files; and its checks."""

    def __init__(self, tmp_path: Path, uid: int | None = None) -> None:
        """`uid`: the user the sandbox runs as, when not this process's own; the targets are
        then made reachable for that user, so only the sandbox stands in the way."""
        self.tmp_path = tmp_path
        self.token = secrets.token_hex(8)  # names this case's sockets and markers
        self.secret_text = f"host secret {secrets.token_hex(8)}"  # in no program text
        self.secret = tmp_path / SECRET_FILE
        self.secret.write_text(self.secret_text + "\n")
        self.secret.chmod(0o600)
        if uid is not None:
            os.chown(self.secret, uid, -1)
        self.stdlib = Path(os.__file__)
        self.tmp_marker = Path(tempfile.gettempdir()) / f"aimesh-attack-{self.token}"
        self.tcp = self._listen(socket.AF_INET, ("127.0.0.1", 0))
        self.unix = self._listen(socket.AF_UNIX, str(tmp_path / UNIX_SOCKET))
        self.abstract_name = f"\0aimesh-attack-{self.token}"
        self.abstract = self._listen(socket.AF_UNIX, self.abstract_name)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        if uid is not None:
            (tmp_path / UNIX_SOCKET).chmod(0o777)
        self.sleeper = subprocess.Popen(["sleep", "60"], user=uid)
        self.before = self._files()

    @staticmethod
    def _listen(family: int, address: Any) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind(address)
        sock.listen()
        sock.setblocking(False)
        return sock

    def render(self, text: str) -> str:
        """`text` with each $name replaced by the Python literal of that host value."""
        values = {
            "tcp_port": self.tcp.getsockname()[1],
            "udp_port": self.udp.getsockname()[1],
            "unix_path": str(self.tmp_path / UNIX_SOCKET),
            "abstract_name": self.abstract_name,
            "test_pid": os.getpid(),
            "sleeper_pid": self.sleeper.pid,
            "secret": str(self.secret),
            "marker": str(self.tmp_path / "marker"),
            "tmp_marker": str(self.tmp_marker),
            "project_init": aimesh.__file__,
            "readme": str(REPO_ROOT / "README.md"),
            "repo_root": str(REPO_ROOT),
            "ptrace_nr": PTRACE.get(platform.machine(), -1),
        }
        return Template(text).substitute({name: repr(value) for name, value in values.items()})

    def _files(self) -> dict[str, tuple[Any, ...]]:
        return {"secret file": _file_state(self.secret), "stdlib os.py": _file_state(self.stdlib)}

    def effects(self, result: RunResult) -> list[str]:
        """What the run changed on the host, or learned from it."""
        found = []
        for name, listener in (("TCP", self.tcp), ("unix", self.unix), ("abstract", self.abstract)):
            with contextlib.suppress(BlockingIOError):
                listener.accept()[0].close()
                found.append(f"the host's {name} listener got a connection")
        with contextlib.suppress(BlockingIOError):
            found.append(f"the host's UDP socket received {self.udp.recv(4096)!r}")
        if self.sleeper.poll() is not None:
            found.append(f"the host process {self.sleeper.pid} died ({self.sleeper.returncode})")
        extra = sorted(set(os.listdir(self.tmp_path)) - {SECRET_FILE, UNIX_SOCKET})
        if extra:
            found.append(f"files appeared in the host's {self.tmp_path}: {extra}")
        if self.tmp_marker.exists():
            found.append(f"{self.tmp_marker} was created on the host")
        after = self._files()
        for name, state in self.before.items():
            if after[name] != state:
                found.append(f"the host's {name} changed: {state[1:]} -> {after[name][1:]}")
        if self.secret_text in result.stdout + result.stderr:
            found.append("the host's secret file was read")
        return found

    def close(self) -> None:
        self.sleeper.kill()
        self.sleeper.wait()
        for sock in (self.tcp, self.unix, self.abstract, self.udp):
            sock.close()
        self.tmp_marker.unlink(missing_ok=True)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    targets = Host(tmp_path)
    yield targets
    targets.close()


Check = Callable[[Host, RunResult], list[str]]


@dataclass(frozen=True)
class Attack:
    """One hostile program ($names are host values), the status it must get, and what else."""

    name: str
    program: str
    status: str
    mentions: str = ""  # in result.error, after the same $name substitution
    error_type: str = ""
    limits: Limits = LIMITS
    check: Check | None = None
    split_error_type: str = ""  # where the split mode names it otherwise (os._exit: the
    # program's process ended, which only the tests' side can say)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _server_survives(host: Host, result: RunResult) -> list[str]:
    """The program printed its fork server's pid first: that server must live, untraced."""
    server = int(result.stdout.split()[0])
    if not _alive(server):
        return [f"the fork server {server} was killed"]
    status = Path(f"/proc/{server}/status").read_text()
    if "TracerPid:\t0\n" not in status:
        return [f"the fork server {server} is being traced"]
    return []


def _nothing_left_outside_scratch(host: Host, result: RunResult) -> list[str]:
    """The program printed the paths it tried to create outside its own scratch dir."""
    left = [path for path in result.stdout.split() if os.path.lexists(path)]
    for path in left:
        _remove(path)
    return [f"left behind outside its scratch dir: {left}"] if left else []


def _squatted(host: Host, result: RunResult) -> list[str]:
    """Like _nothing_left_outside_scratch, but the dirs stay: the next run must cope with them."""
    left = [path for path in result.stdout.split() if os.path.lexists(path)]
    return [f"created the scratch dirs of later runs: {left[:3]}..."] if left else []


def _output_capped(host: Host, result: RunResult) -> list[str]:
    cap = LIMITS.output_bytes
    sizes = [len(result.stdout.encode()), len(result.stderr.encode())]
    return [f"output kept past the {cap}-byte cap: {sizes}"] if max(sizes) > cap else []


def _ended_at_the_timeout(host: Host, result: RunResult) -> list[str]:
    limit_ms = (LIMITS.timeout_s + 1.5) * 1000
    return [f"took {result.duration_ms} ms"] if result.duration_ms > limit_ms else []


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _host_process_untouched(host: Host, result: RunResult) -> list[str]:
    """Its scheduling, too: nice value and CPUs are the host's to set."""
    found = []
    if _nice(host.sleeper.pid) != 0:
        found.append(f"the host process {host.sleeper.pid} was reniced")
    if os.sched_getaffinity(host.sleeper.pid) != os.sched_getaffinity(0):
        found.append(f"the host process {host.sleeper.pid} was pinned")
    return found


def _no_sysv_ipc_left(host: Host, result: RunResult) -> list[str]:
    """SysV IPC objects outlive processes: a run must not be able to make any."""
    made = [word for word in result.stdout.split() if word.startswith("ipc-id=")]
    return [f"the run created SysV IPC objects: {made}"] if made else []


def _program(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def _libc_program(call: str, what: str, before: str = "") -> str:
    return _program(LIBC) + f"\n\n{before}checked({call})\nassert False, '{what} went through'\n"


ATTACKS = [
    # Network
    Attack(
        "tcp_connect",
        "import socket\nsocket.create_connection(('127.0.0.1', $tcp_port), timeout=1)",
        "forbidden",
        "socket(AF_INET, SOCK_STREAM)",
    ),
    Attack(
        "udp_send",
        _program(
            """
            import socket
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.sendto(b'escaped', ('127.0.0.1', $udp_port))
            """
        ),
        "forbidden",
        "socket(AF_INET, SOCK_DGRAM)",
    ),
    Attack(
        "unix_connect",
        "import socket\nsocket.socket(socket.AF_UNIX).connect($unix_path)",
        "forbidden",
        "socket(AF_UNIX, SOCK_STREAM)",
    ),
    Attack(
        "abstract_unix",
        "import socket\nsocket.socket(socket.AF_UNIX).connect($abstract_name)",
        "forbidden",
        "socket(AF_UNIX, SOCK_STREAM)",
    ),
    Attack(
        "dns_lookup",
        "import socket\nprint(socket.getaddrinfo('example.com', 443))",
        "forbidden",
        "socket.getaddrinfo('example.com', 443",
    ),
    # Reading what is not the program's
    Attack("read_shadow", "print(open('/etc/shadow').read())", "forbidden", "open('/etc/shadow'"),
    Attack(
        "host_environ",
        "print(open(f'/proc/{$test_pid}/environ', 'rb').read())",
        "forbidden",
        "/environ'",
    ),
    Attack(
        "self_environ",
        "print(open('/proc/self/environ', 'rb').read())",
        "forbidden",
        "open('/proc/self/environ'",
    ),
    Attack(
        "server_environ",
        "import os\nprint(open(f'/proc/{os.getppid()}/environ', 'rb').read())",
        "forbidden",
        "/environ'",
    ),
    Attack(
        "server_memory",
        _program(
            """
            import os
            with open(f'/proc/{os.getppid()}/mem', 'rb') as mem:
                mem.seek(0x400000)
                print(mem.read(4096))
            """
        ),
        "forbidden",
        "/mem'",
    ),
    Attack(
        "read_project_module",
        "print(open($project_init).read())",
        "forbidden",
        "open($project_init",
    ),
    Attack("read_readme", "print(open($readme).read())", "forbidden", "open($readme"),
    Attack("read_host_secret", "print(open($secret).read())", "forbidden", "open($secret"),
    Attack(
        "symlink_shadow",
        "import os\nos.symlink('/etc/shadow', 'shadow')\nprint(open('shadow').read())",
        "forbidden",
        "open('shadow'",
    ),
    Attack(
        "hardlink_host_file",
        "import os\nos.link($secret, 'stolen')\nprint(open('stolen').read())",
        "forbidden",
        "os.link(",
    ),
    Attack(
        "import_project",
        "import sys\nsys.path.insert(0, $repo_root)\nimport aimesh.app",
        "error",
        "No module named 'aimesh'",
        "ModuleNotFoundError",
    ),
    Attack(
        "load_project_file",
        _program(
            """
            import importlib.util
            spec = importlib.util.spec_from_file_location('aimesh', $project_init)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            """
        ),
        "forbidden",
        "open($project_init",
    ),
    # Writing outside the scratch dir, or changing what is there
    Attack(
        "write_tmp_path", "open($marker, 'w').write('escaped')", "forbidden", "open($marker, 'w')"
    ),
    Attack(
        "write_tmp",
        "open($tmp_marker, 'w').write('escaped')",
        "forbidden",
        "open($tmp_marker, 'w')",
    ),
    Attack("write_stdlib", "import os\nopen(os.__file__, 'a')", "forbidden", "os.py', 'a')"),
    Attack(
        "write_scratch_base",
        _program(
            """
            import os
            path = os.path.join(os.path.dirname(os.getcwd()), 'left-behind')
            print(path, flush=True)
            open(path, 'w').write('read me in a later run')
            """
        ),
        "forbidden",
        "left-behind",
        check=_nothing_left_outside_scratch,
    ),
    Attack(
        "squat_next_scratch",
        _program(
            """
            import os
            base = os.path.dirname(os.getcwd())
            for later in range(50):  # names a later run might use
                path = os.path.join(base, f'run-{later}')
                print(path, flush=True)
                os.mkdir(path)
            """
        ),
        "forbidden",
        "os.mkdir(",
        check=_squatted,
    ),
    Attack("chmod_host_file", "import os\nos.chmod($secret, 0o666)", "forbidden", "os.chmod("),
    Attack("utime_host_file", "import os\nos.utime($secret, (0, 0))", "forbidden", "os.utime("),
    Attack(
        "setxattr_host_file",
        "import os\nos.setxattr($secret, 'user.aimesh', b'escaped')",
        "forbidden",
        "os.setxattr(",
    ),
    # Processes
    Attack("fork", "import os\nos.fork()", "forbidden", "os.fork()"),
    Attack(
        "exec",
        "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo escaped > ' + $marker])",
        "forbidden",
        "os.exec(",
    ),
    Attack(
        "subprocess_run",
        "import subprocess\nsubprocess.run(['sh', '-c', 'echo escaped > ' + $marker])",
        "forbidden",
        "subprocess.Popen(",
    ),
    Attack(
        "os_system",
        "import os\nos.system('echo escaped > ' + $marker)",
        "forbidden",
        "os.system(",
    ),
    Attack("fork_bomb", "import os\nwhile True:\n    os.fork()", "forbidden", "os.fork()"),
    Attack(
        "thread_bomb",
        _program(
            """
            import threading, time
            while True:
                threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
            """
        ),
        "memory_limit",
        "can't start new thread",
        "RuntimeError",
    ),
    Attack(
        "kill_parent",
        "import os, signal\nprint(os.getppid(), flush=True)\nos.kill(os.getppid(), signal.SIGKILL)",
        "forbidden",
        "os.kill(",
        check=_server_survives,
    ),
    Attack("kill_all", "import os\nos.kill(-1, 9)", "forbidden", "os.kill(-1, 9)"),
    Attack(
        "kill_host_process",
        "import os\nos.kill($sleeper_pid, 9)",
        "forbidden",
        "os.kill($sleeper_pid, 9)",
    ),
    Attack(
        "ptrace",
        _libc_program(
            "libc.syscall($ptrace_nr, 16, os.getppid(), 0, 0)",
            "PTRACE_ATTACH",
            before="print(os.getppid(), flush=True)\n",
        ),
        "forbidden",
        "libc.syscall(",
        check=_server_survives,
    ),
    # The kernel's own facilities
    Attack(
        "unshare",
        _libc_program("libc.unshare(0x10000000 | 0x00020000)", "unshare(NEWUSER|NEWNS)"),
        "forbidden",
        "libc.unshare(",
    ),
    Attack("setns", _libc_program("libc.setns(0, 0)", "setns"), "forbidden", "libc.setns("),
    Attack(
        "mount",
        _libc_program("libc.mount(b'none', b'.', b'tmpfs', 0, None)", "mount"),
        "forbidden",
        "libc.mount(",
    ),
    Attack(
        "set_clock",
        "import time\ntime.clock_settime(time.CLOCK_REALTIME, time.time())",
        "forbidden",
        "time.clock_settime(",
    ),
    Attack(
        "raise_cpu_rlimit",
        _program(
            """
            import resource
            unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.setrlimit(resource.RLIMIT_CPU, unlimited)
            """
        ),
        "forbidden",
        "resource.setrlimit(",
    ),
    Attack(
        "prlimit_memory",
        _program(
            """
            import resource
            unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.prlimit(0, resource.RLIMIT_AS, unlimited)
            """
        ),
        "forbidden",
        "resource.prlimit(",
    ),
    # Resources
    Attack(
        "memory_bomb",
        "hog = []\nwhile True:\n    hog.append(bytearray(10**7))",
        "memory_limit",
        "memory limit",
        "MemoryError",
    ),
    Attack(
        "disk_fill_files",
        "n = 0\nwhile True:\n    open(f'f{n}', 'w').close()\n    n += 1",
        "output_limit",
        "disk limit",
        "DiskLimit",
    ),
    Attack(
        "disk_fill_bytes",
        "n = 0\nwhile True:\n    open(f'f{n}', 'wb').write(bytes(2 * 1024 * 1024))\n    n += 1",
        "output_limit",
        "disk limit",
        "DiskLimit",
        Limits(timeout_s=3, cpu_s=2, file_size_mb=4, disk_mb=8),
    ),
    Attack(
        "huge_file",
        "with open('huge', 'wb') as f:\n    f.write(bytes(2 * 1024 * 1024))",
        "output_limit",
        "file size limit",
        "FileSizeLimit",
        Limits(timeout_s=3, cpu_s=2, file_size_mb=1),
    ),
    Attack(
        "stdout_flood",
        "while True:\n    print('x' * 1000)",
        "output_limit",
        "stdout",
        "OutputLimit",
        check=_output_capped,
    ),
    Attack(
        "stderr_flood",
        "import sys\nwhile True:\n    sys.stderr.write('x' * 1000)",
        "output_limit",
        "stderr",
        "OutputLimit",
        check=_output_capped,
    ),
    Attack("infinite_loop", "while True:\n    pass", "cpu_limit", "CPU time", "CPULimit"),
    Attack(
        "sleep_past_timeout",
        "import time\ntime.sleep(60)",
        "timeout",
        "timeout",
        "Timeout",
        check=_ended_at_the_timeout,
    ),
    Attack(
        "ignore_sigterm",
        _program(
            """
            import signal, time
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            time.sleep(60)
            """
        ),
        "timeout",
        "timeout",
        "Timeout",
        check=_ended_at_the_timeout,
    ),
    # Crashes
    Attack(
        "ctypes_segfault", "import ctypes\nctypes.string_at(0)", "crashed", "SIGSEGV", "SIGSEGV"
    ),
    Attack(
        "deep_recursion_unlimited",
        _program(
            """
            import sys
            sys.setrecursionlimit(10**6)
            def dive(n):
                return next(map(dive, [n + 1]))  # through C, so the C stack overflows
            dive(0)
            """
        ),
        "crashed",
        "SIGSEGV",
        "SIGSEGV",
    ),
    Attack(
        "deep_recursion",
        "def dive(n):\n    return dive(n + 1)\ndive(0)",
        "error",
        "maximum recursion depth",
        "RecursionError",
    ),
    # Found by review: signals, IPC and scheduling around the filter, hiding from the disk cap
    Attack(
        "sigio_kill_host_process",
        _program(
            """
            import fcntl, os, signal
            read_end, write_end = os.pipe()
            fcntl.fcntl(read_end, fcntl.F_SETOWN, $sleeper_pid)
            fcntl.fcntl(read_end, 10, signal.SIGKILL)  # F_SETSIG
            fcntl.fcntl(read_end, fcntl.F_SETFL, os.O_ASYNC)
            os.write(write_end, b'x')
            """
        ),
        "forbidden",
        "fcntl.fcntl(",
    ),
    Attack(
        "sysv_shared_memory",
        SYSV.format(call="shmget(0, 1 << 20, 0o1600)", remove="shmctl"),
        "forbidden",
        check=_no_sysv_ipc_left,
    ),
    Attack(
        "sysv_message_queue",
        SYSV.format(call="msgget(0, 0o1600)", remove="msgctl"),
        "forbidden",
        check=_no_sysv_ipc_left,
    ),
    Attack(
        "renice_host_process",
        "import os\nos.setpriority(os.PRIO_PROCESS, $sleeper_pid, 19)",
        "forbidden",
        check=_host_process_untouched,
    ),
    Attack(
        "pin_host_process",
        "import os\nos.sched_setaffinity($sleeper_pid, {0})",
        "forbidden",
        check=_host_process_untouched,
    ),
    Attack("memfd_past_memory_limit", "import os\nos.memfd_create('big')", "forbidden"),
    Attack(
        "disk_fill_past_path_max",
        _program(
            """
            import os, time
            for _ in range(18):  # deeper than PATH_MAX, by name length
                os.mkdir('d' * 250)
                os.chdir('d' * 250)
            for n in range(5):
                with open(f'f{n}', 'wb') as fh:
                    fh.write(b'x' * (15 << 20))
            time.sleep(2)
            """
        ),
        "output_limit",
        "disk limit",
        "DiskLimit",
        limits=Limits(timeout_s=3, cpu_s=2, disk_mb=8),
    ),
    Attack(
        "deep_nesting",
        _program(
            """
            import os, time
            for _ in range(1200):
                os.mkdir('d')
                os.chdir('d')
            time.sleep(2)
            """
        ),
        "output_limit",
        "nested",
        "DiskLimit",
    ),
    Attack(
        "unreadable_dir",
        _program(
            """
            import os, time
            os.mkdir('hidden', 0o300)  # writable, not listable: files the disk check cannot see
            open('hidden/f', 'w').write('x')
            time.sleep(2)
            """
        ),
        "output_limit",
        "unreadable",
        "DiskLimit",
    ),
    # The verdict itself
    Attack(
        "forge_report",
        _program(
            """
            import json, os, stat
            forged = json.dumps({'phase': 'done', 'type': ''}).encode()
            for fd in range(3, 64):  # wherever the report pipe was moved to
                try:
                    if stat.S_ISFIFO(os.fstat(fd).st_mode):
                        os.write(fd, forged)
                except OSError:
                    pass
            os._exit(0)
            assert 1 + 1 == 3
            """
        ),
        "error",
        "exited",
        "SystemExit",
        split_error_type="ProgramExited",
    ),
]


def health_problems(result: RunResult) -> list[str]:
    """A normal program passed after the attack, and its server's scratch base holds nothing."""
    lines = result.stdout.splitlines()
    if result.status != "passed" or len(lines) != 2 or lines[0] != "ok":
        return [f"a normal program then ended {result.status}: {result.error} {result.stdout!r}"]
    base = os.path.dirname(lines[1])
    others = sorted(os.listdir(base))  # its own run dir is gone by now: nothing may be left
    for name in others:  # undone, so one failure does not spill into the next case
        _remove(os.path.join(base, name))
    if others:
        return [f"the scratch base {base} still held {others[:3]}"]
    return []


def attack_problems(attack: Attack, host: Host, result: RunResult, mode: str) -> list[str]:
    """Everything wrong with how an attack ended: its effects, its status, its error."""
    problems = host.effects(result)
    if attack.check is not None:
        problems += attack.check(host, result)
    if result.status != attack.status:
        problems.insert(0, f"status {result.status}, expected {attack.status}")
    if attack.mentions and host.render(attack.mentions) not in result.error:
        problems.append(f"the error does not name {host.render(attack.mentions)!r}")
    error_type = (mode == "split" and attack.split_error_type) or attack.error_type
    if error_type and result.error_type != error_type:
        problems.append(f"error_type {result.error_type}, expected {error_type}")
    return problems


def describe(result: RunResult) -> str:
    return (
        f"status={result.status} error_type={result.error_type} error={result.error!r}\n"
        f"stdout={result.stdout[-500:]!r}\nstderr={result.stderr[-500:]!r}"
    )


async def run_attack(program: str, limits: Limits, mode: str) -> RunResult:
    """Same-process: the attack is the whole program. Split: it is the program's side, loaded
    in its own jailed process, which every layer must hold just the same."""
    if mode == "split":
        return await run_tests(program, "", limits=limits)
    return await run_program(program, limits)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["split", "same-process"])
@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
async def test_attack_is_contained(attack: Attack, host: Host, mode: str) -> None:
    result = await run_attack(host.render(attack.program), attack.limits, mode)
    problems = attack_problems(attack, host, result, mode)
    try:
        problems += health_problems(await run_program(HEALTH_PROGRAM, LIMITS))
    except Exception as exc:  # a fork server that died under the attack surfaces here
        problems.append(f"the pool then failed to run a normal program: {exc!r}")
    assert not problems, "\n".join(problems) + "\n" + describe(result)
