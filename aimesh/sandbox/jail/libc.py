"""The few raw system calls the isolation layers need, through ctypes (no C extension to build)."""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


def _checked(result: int, what: str) -> int:
    """libc's -1 (with errno) as OSError carrying the kernel's errno, else the result."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return int(result)


def syscall(number: int, *args: int | bytes | ctypes.Array | None) -> int:
    """Call `number`; an error becomes OSError with the kernel's errno."""
    return _checked(_libc.syscall(ctypes.c_long(number), *args), f"syscall {number}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _checked(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def capset(header: bytes, data: bytes) -> None:
    _checked(_libc.capset(header, data), "capset")


def capget(header: bytes, data: ctypes.Array) -> None:
    _checked(_libc.capget(header, data), "capget")
