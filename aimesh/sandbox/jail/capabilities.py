"""Give up every Linux capability, for good: what makes uid 0 merely an ordinary uid.

Root keeps file ownership (root-owned files stay writable by permissions), which is why the
Landlock ruleset, not the uid, decides what may be written.
"""

from __future__ import annotations

import ctypes
import errno
import struct

from . import libc

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE with their locks, plus KEEP_CAPS locked off.
SECUREBITS_LOCKED_DOWN = 0xEF
_VERSION_3 = 0x20080522
_MAX_CAP = 64
_HEADER = struct.pack("=Ii", _VERSION_3, 0)
_NO_CAPABILITIES = bytes(24)


def held() -> bool:
    """True when this process has any capability in its effective or permitted set."""
    header = struct.pack("=Ii", _VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    libc.capget(header, data)
    return any(data[i] for i in (0, 1, 3, 4))  # effective, permitted of both 32-bit halves


def drop_bounding_set() -> None:
    """Empty the bounding set, so no exec could ever regain a capability; once per server."""
    for cap in range(_MAX_CAP):
        try:
            libc.prctl(PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # past the kernel's last capability
                return
            raise


def drop_held() -> None:
    """Clear the ambient set, lock the securebits, then clear this process's own sets."""
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN)
    libc.capset(_HEADER, _NO_CAPABILITIES)
