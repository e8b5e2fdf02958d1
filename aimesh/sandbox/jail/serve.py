"""The program's side of a split run: load the program, then answer the tests' calls.

This process holds the untrusted code and nothing the verdict depends on: no report fd, no
nonce, no tests. It may lie on the channel as much as it likes; what it sends is only ever read
as plain data (plain.py), which is what an honest function could have returned. Whatever it
does to itself (exits, patches this module, walks frames) ends at most its own answers.

Messages it sends: first `{"loaded": true, "names": {...}}` (or `{"loaded": false, "report":
...}`), then one reply per call: `{"seq", "value"}`, `{"seq", "raised"}` or `{"seq",
"unsendable"}`, with `"mutated"` when the call changed a list, dict or set argument in place.
"""

from __future__ import annotations

import json
import os
import sys
import types
from typing import Any, NoReturn

from . import harness, plain

PREAMBLE, PROGRAM = "preamble.py", harness.PROGRAM
_MUTABLE = (list, dict, set)


def _describe(value: object) -> dict[str, Any]:
    """How the tests' side should see one of the program's names."""
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    if callable(value):
        return {"call": True}
    try:
        return {"value": plain.to_wire(value)}
    except plain.NotPlain as exc:
        return {"other": exc.type_name}


def manifest(module: types.ModuleType) -> dict[str, Any]:
    names = {
        name: _describe(value)
        for name, value in list(vars(module).items())
        if not (name.startswith("__") and name.endswith("__"))
    }
    return {"loaded": True, "names": names}


def _raised(exc: BaseException, last: harness.LastOperation) -> dict[str, Any]:
    """The exception as the tests will see it: its report, the builtin classes it derives from
    (so `except ValueError` still catches a subclass) and its arguments, if they are plain."""
    report = harness.run_report(exc, last, (PROGRAM, PREAMBLE))
    report["base"] = not isinstance(exc, Exception)  # SystemExit, KeyboardInterrupt...
    report["bases"] = [k.__name__ for k in type(exc).__mro__ if k.__module__ == "builtins"]
    try:
        report["args"] = plain.to_wire(exc.args)
    except Exception:  # not plain data: the message alone crosses
        pass
    return report


def _call(
    module: types.ModuleType, request: dict[str, Any], last: harness.LastOperation
) -> dict[str, Any]:
    seq, name = request.get("seq"), request.get("name")
    reply: dict[str, Any] = {"seq": seq}
    try:
        args = plain.from_wire(request.get("args", []))
        kwargs = plain.from_wire(request.get("kwargs", {"d": []}))
        target = vars(module)[name]
    except Exception as exc:  # answered, not raised: this side must go on
        reply["raised"] = {"type": "ProtocolError", "message": f"bad call: {exc}"[:300]}
        return reply
    watched = {
        **{i: a for i, a in enumerate(args) if type(a) in _MUTABLE},
        **{k: a for k, a in kwargs.items() if type(a) in _MUTABLE},
    }
    before = {key: plain.to_wire(value) for key, value in watched.items()}
    last.watching = True
    try:
        result = target(*args, **kwargs)
    except BaseException as exc:  # the tests decide what an exception means
        last.watching = False
        reply["raised"] = _raised(exc, last)
    else:
        last.watching = False
        try:
            reply["value"] = plain.to_wire(result)
        except plain.NotPlain as exc:
            reply["unsendable"] = exc.type_name
        except Exception as exc:  # e.g. MemoryError, or a RecursionError on deep data
            reply["unsendable"] = f"value that could not be sent ({type(exc).__name__})"
    changed = {}
    for key, value in watched.items():
        try:
            after = plain.to_wire(value)
        except plain.NotPlain as exc:  # it put something else into the caller's list
            reply["unsendable"] = f"{exc.type_name} (put into argument {key})"
            continue
        except Exception as exc:
            reply["unsendable"] = f"value that could not be sent ({type(exc).__name__})"
            continue
        if after != before[key]:
            changed[str(key)] = after
    if changed:
        reply["mutated"] = changed
    return reply


def _compiled(spec: dict[str, str]) -> list[types.CodeType]:
    """The task's preamble, then the program; SyntaxError (or ValueError) as compile() raises."""
    parts = (
        harness.compiled(PREAMBLE, spec.get("preamble", "")),
        harness.compiled(PROGRAM, spec["code"]),
    )
    return [code for code in parts if code is not None]


def serve(program_fd: int, channel_fd: int, open_files: int) -> NoReturn:
    """Load the program read from `program_fd` (JSON: preamble, code) and answer calls on
    `channel_fd` until the tests' side closes it; exits 0 then."""
    channel_fd = harness.hide(channel_fd, open_files)
    spec = json.loads(harness.read_all(program_fd))
    module = harness.new_module(harness.MODULE, PROGRAM, spec["code"])
    sys.modules["__main__"] = module
    harness.prepare_interpreter()
    sys.set_int_max_str_digits(0)  # big ints are plain data: their digits must cross
    last = harness.LastOperation()
    try:
        codes = _compiled(spec)
    except (SyntaxError, ValueError) as exc:
        harness.print_exception(exc, None, limit=0)
        _send(channel_fd, {"loaded": False, "report": harness.compile_report(exc)})
        harness.flush()
        os._exit(0)
    sys.addaudithook(last)
    try:
        for code in codes:
            exec(code, vars(module))  # running it is the point
    except BaseException as exc:  # SystemExit too: the tests get nothing to call
        _failed_load(channel_fd, exc, last)
    else:
        last.watching = False
        _send(channel_fd, manifest(module))
        _answer(module, channel_fd, last)
    harness.flush()
    os._exit(0)


def _failed_load(channel_fd: int, exc: BaseException, last: harness.LastOperation) -> None:
    last.watching = False
    report = _raised(exc, last)
    harness.flush()
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    harness.print_exception(exc, tb)
    _send(channel_fd, {"loaded": False, "report": report})


def _answer(module: types.ModuleType, channel_fd: int, last: harness.LastOperation) -> None:
    while True:
        try:
            request = plain.receive(channel_fd)
        except (plain.ChannelClosed, plain.ChannelError):
            return  # the tests are done (or gone): so is the program
        try:
            reply = _call(module, request, last)
        except Exception as exc:  # this side's own failure: an answer, never a silent death
            text = f"the program's side could not answer: {type(exc).__name__}: {exc}"[:300]
            raised = {"type": "ProtocolError", "message": text}
            reply = {"seq": request.get("seq"), "raised": raised}
        _send(channel_fd, reply)


def _send(channel_fd: int, message: dict[str, Any]) -> None:
    try:
        plain.send(channel_fd, message)
    except plain.ChannelError as exc:  # e.g. a value over the frame cap
        seq = message.get("seq")
        plain.send(channel_fd, {"seq": seq, "unsendable": f"a value too big to send ({exc})"})
    except OSError:
        os._exit(0)  # the tests' side is gone
