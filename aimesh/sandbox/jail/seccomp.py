"""A seccomp-BPF filter that refuses what sandboxed code has no business doing, built by hand.

Refused with EPERM (so Python raises PermissionError and the verdict can name the call): sockets,
exec, process creation (threads are allowed), namespaces, mounts, ptrace and reading other
processes' memory, raising or setting rlimits, setting clocks, kernel-level facilities (bpf,
io_uring, modules, keys...), changing file metadata (mode, owner, times, xattrs, chattr flags),
and signals to any process but the caller's own. clone3 answers
ENOSYS so that glibc falls back to clone, whose flags a filter can inspect.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from . import libc
from .syscalls import AUDIT_ARCH, NUMBERS, X32_BIT

PR_SET_NO_NEW_PRIVS = 38
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


DENIED = (
    "socket", "socketpair", "execve", "execveat", "fork", "vfork",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "tkill", "setrlimit", "truncate",
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "syslog",
    "acct", "quotactl", "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm",
    "sethostname", "setdomainname", "lookup_dcookie", "fanotify_init",
    # File metadata: Landlock has no right for it, and uid 0 owns the host's files.
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr",
    "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat",
)  # fmt: skip
# ioctl commands that change a file's attributes (chattr), refused on any fd.
FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR = 0x40086602, 0x40046602, 0x401C5820
# Calls whose first argument is a pid (or thread-group id): allowed only on the caller itself.
SELF_TARGETED = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


def machine() -> str:
    return platform.machine()


def supported() -> bool:
    """True where this module knows the system call numbers."""
    return machine() in NUMBERS


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def build_filter(self_pid: int, arch: str | None = None) -> bytes:
    """The BPF program for a process whose pid is `self_pid` (signals to itself stay allowed)."""
    arch = arch or machine()
    numbers = NUMBERS[arch]
    deny = _ins(_RET, RET_ERRNO | errno.EPERM)
    prog = [
        _ins(_LD_ABS, _ARCH),
        _ins(_JEQ, AUDIT_ARCH[arch], jt=1),
        _ins(_RET, RET_KILL_PROCESS),  # another ABI (e.g. int 0x80): nothing legitimate
        _ins(_LD_ABS, _NR),
    ]
    if arch == "x86_64":
        prog += [_ins(_JGE, X32_BIT, jf=1), deny]
    for name in DENIED:
        if name in numbers:
            prog += [_ins(_JEQ, numbers[name], jf=1), deny]
    prog += [
        _ins(_JEQ, numbers["clone3"], jf=1),
        _ins(_RET, RET_ERRNO | errno.ENOSYS),
        # clone: a thread (CLONE_THREAD set) is fine, a new process is not.
        _ins(_JEQ, numbers["clone"], jf=4),
        _ins(_LD_ABS, _arg_low(0)),
        _ins(_JSET, CLONE_THREAD, jf=1),
        _ins(_RET, RET_ALLOW),
        deny,
        # prlimit64(pid, resource, new, old): reading (new == NULL) only.
        _ins(_JEQ, numbers["prlimit64"], jf=6),
        _ins(_LD_ABS, _arg_low(2)),
        _ins(_JEQ, 0, jf=3),
        _ins(_LD_ABS, _arg_low(2) + 4),
        _ins(_JEQ, 0, jf=1),
        _ins(_RET, RET_ALLOW),
        deny,
    ]
    prog += [
        _ins(_JEQ, numbers["ioctl"], jf=6),
        _ins(_LD_ABS, _arg_low(1)),
        _ins(_JEQ, FS_IOC_SETFLAGS, jt=2),
        _ins(_JEQ, FS_IOC32_SETFLAGS, jt=1),
        _ins(_JEQ, FS_IOC_FSSETXATTR, jf=1),
        deny,
        _ins(_RET, RET_ALLOW),
    ]
    own = self_pid & 0xFFFFFFFF
    own_group = -self_pid & 0xFFFFFFFF  # kill(-pgid): the caller leads its own group
    for name in SELF_TARGETED:
        prog += [
            _ins(_JEQ, numbers[name], jf=5),
            _ins(_LD_ABS, _arg_low(0)),
            _ins(_JEQ, own, jt=2),
            _ins(_JEQ, own_group if name == "kill" else own, jt=1),
            deny,
            _ins(_RET, RET_ALLOW),
        ]
    prog.append(_ins(_RET, RET_ALLOW))
    return b"".join(prog)


def install(program: bytes) -> None:
    """Load the filter on the calling thread (no_new_privs first, as the kernel requires)."""
    count = len(program) // 8
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("=HxxxxxxQ", count, ctypes.addressof(buf))
    fprog_buf = ctypes.create_string_buffer(fprog, len(fprog))
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog_buf))
