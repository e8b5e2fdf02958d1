"""The tests' side of a split run: the only process that can decide a verdict.

The task's trusted code (its preamble, then its tests) runs here; the program runs in another
jailed process (serve.py). Each name the program defines becomes, here, a proxy that sends the
call's arguments over the channel and returns the answer rebuilt as plain data (plain.py), so a
value can only be *equal* by being equal. The report (with the run's nonce) is written to a file
only this process holds; before each call it says which call is running, so a run killed for
time or a limit in the middle of one is reported with the call named.

What cannot cross is a failed verdict naming it, and stays failed even if the tests catch the
error: an object that is not plain data (returned, raised into a list argument, or passed by the
tests, such as a callback), the program's process ending during a call, and an early exit.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import re
import sys
from typing import Any, NoReturn

from . import harness, plain

TESTS, PREAMBLE, PROGRAM = "tests.py", "preamble.py", harness.PROGRAM
MAX_SHOWN = 200
# The jail's own files: their frames are left out of the tracebacks the tests print.
JAIL_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
MAX_REPORT_BYTES = 60_000  # the engine reads 64,000
# What a report from the program's side may say about its own failure: never its phase or
# verdict, which only this process decides.
_REPORT_FIELDS = {
    "type": str, "message": str, "line": int, "text": str, "file": str, "origin_line": int,
    "origin_text": str, "origin_file": str, "errno": int, "denied": str,
}  # fmt: skip
# Exceptions that steer the tests' own control flow if raised for real (a `for` loop over
# map(f, ...) stops at StopIteration): they cross as stand-ins of the same name.
_STEERING = frozenset({"StopIteration", "StopAsyncIteration", "GeneratorExit"})
PLAIN_TYPES = "None, bool, int, float, complex, str, bytes, and lists, tuples, dicts and sets"


class CrossingFailed(BaseException):
    """The run is decided (not passed); raised through the tests so they stop. A BaseException,
    so a test's `except Exception` cannot swallow it."""


class ReportFile:
    """The verdict's report, rewritten in place: the last write is what the engine reads."""

    def __init__(self, fd: int, nonce: str) -> None:
        self.fd, self.nonce = fd, nonce

    def write(self, report: dict[str, Any]) -> None:
        data = json.dumps({**report, "nonce": self.nonce}).encode()
        cap = harness.MAX_TEXT
        while len(data) > MAX_REPORT_BYTES and cap > 50:  # escaped text can be 12 bytes a char
            cap //= 2
            short = {k: v[:cap] if type(v) is str else v for k, v in report.items()}
            data = json.dumps({**short, "nonce": self.nonce}).encode()
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))


def _clean(report: Any) -> dict[str, Any]:
    """The fields of a report from the program's side, of the types they should have."""
    if type(report) is not dict:
        return {"type": "ProtocolError", "message": "the program's side sent a malformed report"}
    cleaned: dict[str, Any] = {}
    for name, kind in _REPORT_FIELDS.items():
        value = report.get(name)
        if type(value) is kind:
            cleaned[name] = value[: harness.MAX_TEXT] if kind is str else value
    if not str(cleaned.get("type", "")).isidentifier():  # an empty type would read as no error
        cleaned["type"] = "ProgramError"
    return cleaned


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _call_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [_shown(a) for a in args] + [f"{k}={_shown(v)}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(shown)})"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 4] + "...)"


def _builtin_exception(name: Any) -> type[Exception] | None:
    kind = getattr(builtins, name, None) if type(name) is str else None
    if isinstance(kind, type) and issubclass(kind, Exception) and name not in _STEERING:
        return kind
    return None


def crossed_exception(info: dict[str, Any], bases: Any, args: Any) -> Exception:
    """The program's exception, rebuilt here: a builtin type as itself; any other as a stand-in
    of the same name under the nearest builtin class it derives from (a ValueError subclass is
    still caught by `except ValueError`). Its arguments cross when they are plain data."""
    name, message = info["type"], info.get("message", "")
    kind = _builtin_exception(name)
    if kind is None:
        found = (_builtin_exception(base) for base in (bases if type(bases) is list else []))
        parent = next((k for k in found if k is not None), Exception)
        kind = type(name, (parent,), {"__module__": "program"})
    try:
        rebuilt = plain.from_wire(args) if args is not None else None
    except plain.ChannelError:
        rebuilt = None
    try:
        exc = kind(*rebuilt) if type(rebuilt) is tuple else kind(message)
    except Exception:  # e.g. UnicodeDecodeError wants five arguments
        exc = type(name, (Exception,), {"__module__": "program"})(message)
    exc.program_report = info  # type: ignore[attr-defined]
    return exc


class Program:
    """The program's process, seen from the tests: calls go over the channel, answers come back
    as plain data. The first failure to cross is kept: it decides the run."""

    def __init__(self, channel_fd: int, report: ReportFile) -> None:
        self.fd, self.report = channel_fd, report
        self.seq = ""
        self.broken: dict[str, Any] | None = None

    def fail(self, kind: str, message: str, call: str = "", **extra: Any) -> NoReturn:
        if self.broken is None:
            self.broken = {**extra, "phase": "call", "type": kind, "message": message}
            if call:
                self.broken["call"] = call
        raise CrossingFailed()

    def receive(self, during: str) -> dict[str, Any]:
        try:
            return plain.receive(self.fd)
        except plain.ChannelClosed:
            self.fail("ProgramExited", f"the program's process ended {during}", during=during)
        except plain.ChannelError as exc:
            self.fail("ProtocolError", f"the program's process sent {exc} {during}")

    def proxy(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, args, kwargs)

        call.__name__ = call.__qualname__ = name
        return call

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.broken is not None:
            raise CrossingFailed()
        shown = _call_text(name, args, kwargs)
        # Unguessable, so an answer cannot be written before its call has been read (a thread
        # of the program flooding the channel with answers for calls to come).
        self.seq = os.urandom(8).hex()
        try:
            request = {"seq": self.seq, "name": name, "args": plain.to_wire(list(args))}
            request["kwargs"] = plain.to_wire(dict(kwargs))
        except plain.NotPlain as exc:
            self.fail(
                "UnsupportedTest",
                f"the tests passed an object of type {exc.type_name} to {name}(), which cannot "
                f"cross into the program's process: only plain data can ({PLAIN_TYPES})",
                shown,
            )
        self.report.write({"phase": "calling", "call": shown})
        try:
            plain.send(self.fd, request)
        except (OSError, plain.ChannelError):
            self.fail("ProgramExited", f"the program's process ended before {shown}", shown)
        reply = self.receive(f"during {shown}")
        self.report.write({"phase": "testing", "after": shown})
        return self._answer(reply, shown, args, kwargs)

    def _answer(
        self, reply: dict[str, Any], shown: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if reply.get("seq") != self.seq:
            self.fail("ProtocolError", f"the program's process answered out of turn for {shown}")
        if "unsendable" in reply:
            what = str(reply["unsendable"])[:200]
            self.fail(
                "NotPlainData",
                f"{shown} returned an object of type {what}, which is not plain data: only "
                f"values of exact builtin types cross to the tests ({PLAIN_TYPES})",
                shown,
            )
        try:
            self._copy_back(reply.get("mutated"), args, kwargs)
            if "raised" in reply:
                raised = reply["raised"] if type(reply["raised"]) is dict else {}
                info = _clean(raised)
                if raised.get("base") is not False or info["type"] == "ProtocolError":
                    self._ended_early(info, shown)
                raise crossed_exception(info, raised.get("bases"), raised.get("args"))
            return plain.from_wire(reply.get("value"))
        except plain.ChannelError as exc:
            self.fail("ProtocolError", f"the program's process sent {exc} for {shown}", shown)

    def _ended_early(self, info: dict[str, Any], shown: str) -> NoReturn:
        """SystemExit (or another BaseException) raised by the program during a call: the run
        ends there, as it would have in one process, and no test can catch it."""
        extra = {k: v for k, v in info.items() if k not in ("type", "message")}
        self.fail(info["type"], info.get("message", ""), shown, **extra)

    @staticmethod
    def _copy_back(mutated: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Changes the program made to a list, dict or set argument, made to the tests' own."""
        if not mutated:
            return
        if type(mutated) is not dict:
            raise plain.ChannelError("a malformed list of changed arguments")
        for key, wire in mutated.items():
            target = args[int(key)] if str(key).isdigit() else kwargs[str(key)]
            value = plain.from_wire(wire)
            if type(value) is not type(target):
                raise plain.ChannelError(f"argument {key} changed type")
            if type(target) is list:
                target[:] = value
            else:
                target.clear()
                target.update(value)


class Unreachable:
    """One of the program's names that is neither a function nor plain data (a class instance,
    a module outside the standard library...): any use of it is a failed verdict naming it."""

    def __init__(self, program: Program, name: str, kind: str) -> None:
        self._program, self._name, self._kind = program, name, kind

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._program.fail(
            "NotPlainData",
            f"the tests used {self._name}, a {self._kind} of the program, which cannot cross to "
            f"the tests: only functions and plain data can ({PLAIN_TYPES})",
        )

    def __getattr__(self, name: str) -> NoReturn:
        self._refuse()

    def __repr__(self) -> str:
        return f"<the program's {self._name}: {self._kind}>"

    __call__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = _refuse  # type: ignore[assignment]
    __iter__ = __len__ = __getitem__ = __contains__ = __hash__ = __index__ = _refuse  # type: ignore[assignment]


def _module(program: Program, name: Any, binding: str) -> Any:
    """A module the program imported and the tests use without importing it: imported here
    when it is a top-level module of the standard library (the program chooses the name, so
    nothing deeper, such as a package's `__main__`)."""
    if type(name) is str and name.isidentifier() and name in sys.stdlib_module_names:
        try:
            return importlib.import_module(name)
        except Exception:  # e.g. a module the jail cannot load: treat it as unreachable
            pass
    return Unreachable(program, binding, f"module {str(name)[:100]}")


def bind(
    program: Program, names: Any, namespace: dict[str, Any], trusted: set[str], tests: str
) -> None:
    """Give the tests the program's names. The task's own (`trusted`: its preamble's, and
    Python's builtins, which tests use unawares) stay the task's; the entry point is the
    program's even where the preamble defines it. Modules only where the tests name them."""
    if type(names) is not dict:
        program.fail("ProtocolError", "the program's process sent a malformed list of names")
    used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", tests))
    for name, what in names.items():
        if not (type(name) is str and name.isidentifier()) or name in trusted:
            continue
        if type(what) is not dict:
            program.fail("ProtocolError", f"the program's process described {name} wrongly")
        if what.get("call") is True:
            namespace[name] = program.proxy(name)
        elif "value" in what:
            try:
                namespace[name] = plain.from_wire(what["value"])
            except plain.ChannelError as exc:
                program.fail("ProtocolError", f"the program's {name}: {exc}")
        elif "module" in what:
            if name in used:
                namespace[name] = _module(program, what["module"], name)
        else:
            namespace[name] = Unreachable(program, name, str(what.get("other", "?"))[:100])


def _tests_report(exc: BaseException) -> dict[str, Any]:
    """What `exc` was and where in the tests (or the preamble) it surfaced."""
    return harness.run_report(exc, harness.LastOperation(), (TESTS, PREAMBLE))


def _located(report: dict[str, Any], where: dict[str, Any]) -> dict[str, Any]:
    """`report` (from the program's side, or a crossing failure) plus the test line it came
    from (`where`, a `_tests_report`): the program's line stays the report's line, the test's
    becomes its origin."""
    if "line" not in where:
        return report
    if "line" in report:
        origin = {"origin_line": where["line"], "origin_text": where["text"]}
        return {**report, **origin, "origin_file": where["file"]}
    return {**report, "line": where["line"], "text": where["text"], "file": where["file"]}


def _load_failure(manifest: dict[str, Any]) -> dict[str, Any]:
    return {**_clean(manifest.get("report")), "phase": "load"}


def judge(tests_fd: int, report_fd: int, channel_fd: int) -> NoReturn:
    """Run the tests read from `tests_fd` (JSON: preamble, tests, entry point, nonce) against
    the program on the other end of `channel_fd`; the report goes to `report_fd`. Exits 0.

    Only a run of the tests to their end with nothing broken says `"verdict": "passed"`: no
    other way out of here, whatever the program sent, can."""
    spec = json.loads(harness.read_all(tests_fd))
    report_file = ReportFile(report_fd, str(spec.get("nonce", "")))
    report_file.write({"phase": "loading"})
    program = Program(channel_fd, report_file)
    # The tests are this process's main program: their `if __name__ == "__main__":` runs.
    module = harness.new_module("__main__", TESTS, spec["tests"])
    harness.prepare_interpreter()
    sys.set_int_max_str_digits(0)  # a factorial's digits are plain data too
    report: dict[str, Any] = {"phase": "done", "type": "", "verdict": "passed"}
    decided = False
    try:
        preamble = harness.compiled(PREAMBLE, spec.get("preamble", ""))
        tests = harness.compiled(TESTS, spec["tests"], explained=True)
    except (SyntaxError, ValueError) as exc:  # the task's own code: the program is not to blame
        report = {**harness.compile_report(exc), "phase": "tests"}
        _finish(report_file, report)
    try:
        manifest = program.receive("while the program loaded")
        if manifest.get("loaded") is not True:
            _finish(report_file, _load_failure(manifest))
        if preamble is not None:
            exec(preamble, vars(module))  # the task's trusted code
        trusted = (set(vars(module)) | set(dir(builtins))) - {spec.get("entry_point") or ""}
        bind(program, manifest.get("names"), vars(module), trusted, spec["tests"])
        exec(tests, vars(module))  # running them is the point
    except CrossingFailed as exc:
        broken = program.broken or {"type": "ProtocolError"}
        report, decided = _located(broken, _tests_report(exc)), True
    except BaseException as exc:  # the tests failed, or an exception crossed and went uncaught
        report = _tests_report(exc)
        crossed = getattr(exc, "program_report", None)
        if crossed is not None:
            report = _located(crossed, report)
        harness.flush()
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        harness.print_exception(exc, tb, hide=JAIL_DIR, crossed=crossed)
    if program.broken is not None and not decided:  # the tests caught it and went on
        report = program.broken
    if report.get("type") or program.broken is not None:
        report = {**report, "verdict": ""}  # belt and braces: only a clean end passes
    _finish(report_file, report)


def _finish(report_file: ReportFile, report: dict[str, Any]) -> NoReturn:
    harness.flush()
    report_file.write(report)
    os._exit(0)
