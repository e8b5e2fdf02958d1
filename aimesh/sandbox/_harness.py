"""Child-side harness, copied into the scratch dir and run as `python -I -S harness.py PROG RESULT`.

It runs program.py as `__main__` and reports how it ended in a small JSON file, because an exit
code alone cannot carry the exception type, message and failing line an LLM needs to fix code.
It is never imported by the engine; the runner reads this file as text.
"""

import builtins
import contextlib
import linecache
import os
import sys
import traceback
import types
from json import dumps

PROGRAM = sys.argv[1] if len(sys.argv) > 1 else "program.py"
RESULT = sys.argv[2] if len(sys.argv) > 2 else ".aimesh-result.json"
EXIT_OK, EXIT_ERROR, EXIT_ASSERT = 0, 1, 2
MAX_TEXT = 2_000
MAX_STATEMENT_LINES = 5


def _flush() -> None:
    """Flush every stdio stream; also runs before each fork so children don't repeat output."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):  # the program may have replaced or closed it
            stream.flush()


def _text(value: object) -> str:
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
    lines = [linecache.getline(PROGRAM, n).rstrip() for n in range(first, last + 1)]
    return _text("\n".join(line for line in lines if line.strip()).strip())


def _run_report(exc: BaseException) -> dict[str, object]:
    """Type, message and where in program.py: innermost frame, and the statement that led there."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == PROGRAM]
    report: dict[str, object] = {
        "phase": "run",
        "type": type(exc).__name__,
        "message": _text(exc.code if isinstance(exc, SystemExit) else exc),
        "errno": getattr(exc, "errno", None) if isinstance(exc, OSError) else None,
    }
    if frames:
        inner, outer = frames[-1], frames[0]
        report.update(line=inner.lineno, text=_statement(inner))
        if outer.lineno != inner.lineno:
            report.update(origin_line=outer.lineno, origin_text=_statement(outer))
    return report


def _compile_report(exc: BaseException) -> dict[str, object]:
    """A program that does not compile: SyntaxError carries its own line and text."""
    report: dict[str, object] = {"phase": "compile", "type": type(exc).__name__}
    if isinstance(exc, SyntaxError):
        report.update(message=_text(exc.msg), line=exc.lineno, text=_text((exc.text or "").strip()))
    else:  # e.g. ValueError for a null byte in the source
        report["message"] = _text(exc)
    return report


def _write(fd: int, path: str, report: dict[str, object]) -> None:
    """Write the report to the fd opened before the program ran, or reopen if it was closed."""
    data = dumps(report).encode()
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)
    except OSError:
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError:
            os.write(2, b"\naimesh-harness: could not write the result file\n")


def main() -> None:
    """Compile and exec program.py, then exit 0 / 2 (AssertionError) / 1 (anything else)."""
    home_pid = os.getpid()
    os.environ.clear()  # drop the LC_CTYPE that PEP 538 locale coercion adds to the empty env
    sys.dont_write_bytecode = True
    os.register_at_fork(before=_flush)
    path = os.path.abspath(RESULT)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(PROGRAM, encoding="utf-8", errors="replace") as fh:
        source = fh.read()
    # Traceback source lines must not depend on the program keeping program.py or the cwd.
    linecache.cache[PROGRAM] = (len(source), None, source.splitlines(True), PROGRAM)
    module = types.ModuleType("__main__")
    module.__file__ = PROGRAM
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [PROGRAM]
    # -S skips site, which is what defines exit()/quit(); without them a program's exit() would
    # read as a NameError instead of the early exit it is.
    builtins.exit = builtins.quit = sys.exit  # type: ignore[attr-defined]

    report: dict[str, object] = {"phase": "done", "type": ""}
    exit_code = EXIT_OK
    try:
        code = compile(source, PROGRAM, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        report, exit_code = _compile_report(exc), EXIT_ERROR
        traceback.print_exception(exc, limit=0)
    else:
        try:
            exec(code, module.__dict__)  # running it is the point
        except BaseException as exc:  # SystemExit too: exiting early skips tests
            report = _run_report(exc)
            exit_code = EXIT_ASSERT if isinstance(exc, AssertionError) else EXIT_ERROR
            _flush()
            tb = exc.__traceback__.tb_next if exc.__traceback__ else None
            traceback.print_exception(type(exc), exc, tb)

    _flush()
    if os.getpid() == home_pid:  # a child forked by the program must not report for it
        _write(fd, path, report)
    # os._exit: leftover non-daemon threads or atexit hooks of the program must not hang us.
    os._exit(exit_code)


if __name__ == "__main__":
    main()
