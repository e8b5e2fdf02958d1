"""Landlock through its three system calls: a ruleset built once per server, enforced per child.

The read-only paths are opened once per server; each run gets a ruleset of its own that adds
its fresh scratch dir, so no run can see another's files. What the kernel's ABI cannot handle
is left out and reported (see `layers`), never silently assumed.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable

from . import libc

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_ONLY = READ_FILE | READ_DIR
# Below ABI 3 truncate(2) escapes the ruleset; the seccomp filter refuses it, so ABI 1 is usable.
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
READ_WRITE = (1 << 16) - 1 & ~(EXECUTE | MAKE_CHAR | MAKE_BLOCK | IOCTL_DEV)


def abi_version() -> int:
    """The kernel's Landlock ABI, 0 when it has none (or it is disabled)."""
    try:
        return libc.syscall(SYS_CREATE_RULESET, None, 0, CREATE_RULESET_VERSION)
    except OSError:
        return 0


def _fs_access(abi: int) -> int:
    return _FS_BY_ABI[max(v for v in _FS_BY_ABI if v <= abi)]


def layers(abi: int) -> list[str]:
    """The Landlock layers this ABI gives: files from 1, TCP from 4, scoping from 6."""
    found = ["landlock-fs"] if abi >= 1 else []
    found += ["landlock-net"] if abi >= 4 else []
    found += ["landlock-scope"] if abi >= 6 else []
    return found


class Ruleset:
    """Files: read-only `readable`, read-write one run's scratch dir, nothing else; TCP and
    scopes denied. The readable paths are opened once; each run gets its own ruleset."""

    def __init__(self, readable: Iterable[str], abi: int) -> None:
        if abi < 1:
            raise OSError("Landlock is not available on this kernel")
        self.abi = abi
        self.handled_fs = _fs_access(abi)
        fields = [self.handled_fs]
        if abi >= 4:
            fields.append(NET_BIND_TCP | NET_CONNECT_TCP)
        if abi >= 6:
            fields.append(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
        self.attr = struct.pack(f"={len(fields)}Q", *fields)
        self.readable: list[tuple[int, int]] = []
        for path in readable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # e.g. no /lib64 on this distribution
            self.readable.append((fd, self._access(path, READ_ONLY)))

    def _access(self, path: str, access: int) -> int:
        access &= self.handled_fs
        return access if os.path.isdir(path) else access & FILE_ONLY

    def for_run(self, scratch: str, writable_files: Iterable[str] = ()) -> int:
        """A new ruleset fd for one run: the readable paths plus `scratch` read-write."""
        ruleset = libc.syscall(SYS_CREATE_RULESET, self.attr, len(self.attr), 0)
        try:
            for fd, access in self.readable:
                _add_rule(ruleset, fd, access)
            for path in (scratch, *writable_files):
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    _add_rule(ruleset, fd, self._access(path, READ_WRITE))
                finally:
                    os.close(fd)
        except BaseException:
            os.close(ruleset)
            raise
        return ruleset


def _add_rule(ruleset: int, fd: int, access: int) -> None:
    rule = struct.pack("=Qi", access, fd)
    libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.c_char_p(rule), 0)


def restrict_self(ruleset_fd: int) -> None:
    """Restrict the calling process for good (no_new_privs must be set already)."""
    libc.syscall(SYS_RESTRICT_SELF, ruleset_fd, 0)
