"""A run's scratch dir: measure it while the run goes on, remove it once the run is over.

Both work relative to directory fds, never on path strings, so no path length (PATH_MAX), depth
or symlink a program builds can hide files from the disk cap or from removal; neither recurses
in Python, so no nesting can raise RecursionError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

MAX_ENTRIES = 10_000
MAX_DEPTH = 32  # deeper than any honest program goes; deeper counts as over the cap
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class OverCap(Exception):
    """The scratch dir is past a cap, or hides part of itself; the message says which."""


def usage(path: str) -> int:
    """Bytes allocated under `path`; raises OverCap past MAX_ENTRIES or MAX_DEPTH, or when a
    part cannot be read (a program that hides files from this count gets no benefit from it).
    Holds one fd per level of the dir it is in, MAX_DEPTH at most."""
    total, entries = 0, 0
    stack = [_opened(os.open(path, _DIR_FLAGS))]
    try:
        while stack:
            fd, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            entries += 1
            if entries > MAX_ENTRIES:
                raise OverCap(f"more than {MAX_ENTRIES} files")
            st = _lstat(name, fd)
            if st is None:
                continue  # removed while we looked
            total += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                if len(stack) >= MAX_DEPTH:
                    raise OverCap(f"directories nested more than {MAX_DEPTH} deep")
                stack.append(_opened(_open_dir(name, fd)))
    finally:
        for fd, _ in stack:
            os.close(fd)
    return total


def _opened(fd: int) -> tuple[int, Iterator[str]]:
    """A dir fd with an iterator over its names; the fd is closed if listing fails."""
    try:
        return fd, iter(_entries(fd))
    except BaseException:
        os.close(fd)
        raise


def _entries(fd: int) -> list[str]:
    try:
        return os.listdir(fd)
    except PermissionError:
        raise OverCap("part of the scratch dir was made unreadable") from None


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        raise OverCap("part of the scratch dir was made unreadable") from None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise OverCap("the scratch dir changed under the disk check") from None
        raise


def remove(path: str) -> None:
    """Remove `path` and everything below, holding two fds at a time at most.

    Only for a finished run: its processes are dead, so nothing moves while this walks.
    A dir the run made unreadable is made readable first (its owner may).
    """
    try:
        os.rmdir(path)  # the common case: the program left nothing behind
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    names: list[str] = []  # the path from `path` down to the dir `fd` is open on
    fd = os.open(path, _DIR_FLAGS)
    try:
        while True:
            child = _empty_or_descend(fd)
            if child is not None:
                names.append(child)
                inner = os.open(child, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _empty_or_descend(fd: int) -> str | None:
    """Unlink every non-dir in `fd`; return the name of a subdir to go into, or None if empty."""
    os.fchmod(fd, 0o700)  # the run (or the server, for the base) may have left it read-only
    names = os.listdir(fd)
    for name in names:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError):
                os.chmod(name, 0o700, dir_fd=fd)  # a dir, not a link: nothing moves now
            return name
        os.unlink(name, dir_fd=fd)
    return None
