"""bubblewrap around the whole fork server, for kernels without Landlock.

`--unshare-all --unshare-user --cap-drop ALL` is what held when measured (docs/sandbox-layers.md;
without `--unshare-user`, root keeps its capabilities and can remount a read-only bind). Only
the system, the interpreter, the server's own code and its scratch base are visible inside, and
only the scratch base is writable.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache", "/etc/localtime")


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def bwrap_command(command: list[str], *, python: str, base: str, code_dir: str) -> list[str]:
    """`command` run inside a fresh bubblewrap sandbox (the interpreter by its real path)."""
    bwrap = find_bwrap()
    if bwrap is None:
        raise FileNotFoundError("bwrap is not installed")
    real_python = os.path.realpath(python)
    prefix = str(Path(real_python).parent.parent)
    visible = [*SYSTEM_DIRS, prefix, sys.base_prefix, code_dir]
    args = [
        bwrap, "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--die-with-parent",
        "--new-session",
    ]  # fmt: skip
    for device in DEVICES:
        args += ["--dev-bind", device, device]
    for path in dict.fromkeys(visible):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += ["--bind", base, base, "--remount-ro", "/", "--chdir", "/"]
    return [*args, "--", real_python, *command[1:]]
    return args
