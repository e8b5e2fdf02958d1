"""A seccomp-BPF filter that refuses what sandboxed code has no business doing, built by hand.

Refused with EPERM (so Python raises PermissionError and the verdict can name the call): sockets,
exec, process creation (threads are allowed), namespaces, mounts, ptrace and reading other
processes' memory, raising or setting rlimits, setting clocks, kernel-level facilities (bpf,
io_uring, modules, keys...), changing file metadata (mode, owner, times, xattrs, chattr flags),
SysV IPC, other processes' scheduling, memfds, and signals to any process but the caller's own
(kill and friends, and fcntl's F_SETOWN/F_SETSIG, which have the kernel send them). clone3 answers
ENOSYS so that glibc falls back to clone, whose flags a filter can inspect.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
from collections.abc import Callable

from . import libc
from .syscalls import AUDIT_ARCH, NUMBERS, X32_BIT

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

CLONE_THREAD = 0x00010000

# BPF opcodes (linux/filter.h)
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

# struct seccomp_data offsets
_NR, _ARCH = 0, 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index  # low 32 bits of args[index] (little-endian)


# Refused to the server and so to every child (the server needs none of them).
DENIED = (
    "socket", "socketpair", "execve", "execveat",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "pidfd_send_signal", "tkill", "truncate",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "syslog",
    "acct", "quotactl", "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm",
    "sethostname", "setdomainname", "lookup_dcookie", "fanotify_init",
    # File metadata: Landlock has no right for it, and uid 0 owns the host's files.
    "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr",
    "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat",
    # SysV IPC is shared with the host (Landlock does not cover it); so is other processes'
    # scheduling; memfd memory escapes the address-space limit.
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget",
    "semop", "semctl", "semtimedop", "setpriority", "sched_setparam", "sched_setscheduler",
    "sched_setaffinity", "sched_setattr", "ioprio_set", "memfd_create",
)  # fmt: skip
# fcntl commands that make the kernel signal a chosen process (SIGIO to any pid, as SIGKILL).
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
# ioctl commands that change a file's attributes (chattr), refused on any fd.
FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR = 0x40086602, 0x40046602, 0x401C5820
# Refused to each child only: the server forks, signals its children and sets their limits.
# (The server chmods what a run left unreadable in its scratch dir, to measure and remove it.)
CHILD_DENIED = (
    "fork", "vfork", "setrlimit", "pidfd_open", "chmod", "fchmod", "fchmodat", "fchmodat2",
)  # fmt: skip
# Calls whose first argument is a pid (or thread-group id): allowed only on the caller itself.
SELF_TARGETED = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


def machine() -> str:
    return platform.machine()


def supported() -> bool:
    """True where this module knows the system call numbers."""
    return machine() in NUMBERS


# An instruction before packing: (code, jt, jf, k, slot); slot names a k the child fills in.
_Ins = tuple[int, int, int, int, str]
OWN, OWN_GROUP = "own", "own_group"
_LEAF_SIZE = 4  # calls compared one by one at a leaf of the search tree


def _ins(code: int, k: int, jt: int = 0, jf: int = 0, slot: str = "") -> _Ins:
    return (code, jt, jf, k & 0xFFFFFFFF, slot)


def _deny(err: int = errno.EPERM) -> _Ins:
    return _ins(_RET, RET_ERRNO | err)


def server_blocks(numbers: dict[str, int]) -> dict[int, list[_Ins]]:
    """What to do for each call the server's filter names: a block that ends in a return."""
    blocks = {numbers[name]: [_deny()] for name in DENIED if name in numbers}
    blocks[numbers["clone3"]] = [_deny(errno.ENOSYS)]
    blocks[numbers["fcntl"]] = _deny_when_arg_in(1, (F_SETOWN, F_SETSIG, F_SETOWN_EX))
    blocks[numbers["ioctl"]] = _deny_when_arg_in(
        1, (FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR)
    )
    return blocks


def _deny_when_arg_in(index: int, values: tuple[int, ...]) -> list[_Ins]:
    """Refuse the call when (the low half of) its argument `index` is one of `values`."""
    tests = [_ins(_JEQ, value, jt=len(values) - n) for n, value in enumerate(values)]
    return [_ins(_LD_ABS, _arg_low(index)), *tests, _ins(_RET, RET_ALLOW), _deny()]


def child_blocks(numbers: dict[str, int]) -> dict[int, list[_Ins]]:
    """What each child adds to the server's filter: what the server itself must still do."""
    blocks = {numbers[name]: [_deny()] for name in CHILD_DENIED if name in numbers}
    # clone: a thread (CLONE_THREAD set) is fine, a new process is not.
    blocks[numbers["clone"]] = [
        _ins(_LD_ABS, _arg_low(0)),
        _ins(_JSET, CLONE_THREAD, jf=1),
        _ins(_RET, RET_ALLOW),
        _deny(),
    ]
    # prlimit64(pid, resource, new, old): reading (new == NULL) only.
    blocks[numbers["prlimit64"]] = [
        _ins(_LD_ABS, _arg_low(2)),
        _ins(_JEQ, 0, jf=3),
        _ins(_LD_ABS, _arg_low(2) + 4),
        _ins(_JEQ, 0, jf=1),
        _ins(_RET, RET_ALLOW),
        _deny(),
    ]
    for name in SELF_TARGETED:  # kill(-pgid) too: the caller leads its own group
        blocks[numbers[name]] = [
            _ins(_LD_ABS, _arg_low(0)),
            _ins(_JEQ, 0, jt=2, slot=OWN),
            _ins(_JEQ, 0, jt=1, slot=OWN_GROUP if name == "kill" else OWN),
            _deny(),
            _ins(_RET, RET_ALLOW),
        ]
    return blocks


def _tree(entries: list[tuple[int, list[_Ins]]]) -> list[_Ins]:
    """A binary search over sorted call numbers, so a call costs ~7 comparisons, not ~100.

    The kernel runs the filter for every call number when it is loaded (its action cache): a
    linear chain made that ~0.25 ms per child.
    """
    if len(entries) <= _LEAF_SIZE:
        out: list[_Ins] = []
        for number, block in entries:
            out += [_ins(_JEQ, number, jf=len(block)), *block]
        return [*out, _ins(_RET, RET_ALLOW)]
    middle = len(entries) // 2
    left, right = _tree(entries[:middle]), _tree(entries[middle:])
    if len(left) > 255:
        raise ValueError("seccomp filter too large for a BPF jump")
    return [_ins(_JGE, entries[middle][0], jt=len(left)), *left, *right]


Blocks = Callable[[dict[str, int]], dict[int, list[_Ins]]]


def _template(arch: str, blocks: Blocks) -> tuple[bytes, list[int], list[int]]:
    """The program with 0 where the caller's pid goes, and where: (own pid, -own pid) slots."""
    prog = [
        _ins(_LD_ABS, _ARCH),
        _ins(_JEQ, AUDIT_ARCH[arch], jt=1),
        _ins(_RET, RET_KILL_PROCESS),  # another ABI (e.g. int 0x80): nothing legitimate
        _ins(_LD_ABS, _NR),
    ]
    if arch == "x86_64":
        prog += [_ins(_JGE, X32_BIT, jf=1), _deny()]
    prog += _tree(sorted(blocks(NUMBERS[arch]).items()))
    packed = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k, _ in prog)
    own_at = [n for n, ins in enumerate(prog) if ins[4] == OWN]
    group_at = [n for n, ins in enumerate(prog) if ins[4] == OWN_GROUP]
    return packed, own_at, group_at


class Filter:
    """A filter built once per server, in buffers a forked child patches with its pid and loads.

    Two stacked filters: the server loads `server_blocks` once (every child inherits it), and
    each child loads the short `child_blocks`; the kernel's load-time cost grows with length.
    """

    def __init__(self, blocks: Blocks, arch: str | None = None) -> None:
        program, self.own_at, self.group_at = _template(arch or machine(), blocks)
        self.program = ctypes.create_string_buffer(program, len(program))
        fprog = struct.pack("=HxxxxxxQ", len(program) // 8, ctypes.addressof(self.program))
        self.fprog = ctypes.create_string_buffer(fprog, len(fprog))
        self.fprog_address = ctypes.addressof(self.fprog)

    def install(self, self_pid: int) -> None:
        """Load the filter for the calling process; no_new_privs must be set already (the
        server sets it once, for itself and every child: one ctypes call less per run)."""
        for index in self.own_at:
            struct.pack_into("=I", self.program, index * 8 + 4, self_pid & 0xFFFFFFFF)
        for index in self.group_at:
            struct.pack_into("=I", self.program, index * 8 + 4, -self_pid & 0xFFFFFFFF)
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.fprog_address)
