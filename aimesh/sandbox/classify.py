"""Name how a run ended, in terms an LLM (and a person) can act on.

Inputs: the server's reply (exit code, who killed it and why, CPU used), the harness's report
(exception type, message, line, and what the sandbox refused) and whether output overflowed.
Our own kills take precedence: they explain any signal that follows. In a split run the report
is the tests' side's, and the reply also says how the program's side ended: when the program's
process died during a call, its exit status names why (a limit, a crash, an early exit).
"""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass
from typing import Any

from aimesh.sandbox.limits import Limits

EXIT_SETUP_FAILED = 125  # jail/child.py: a child that could not be isolated

STATUSES = (
    "passed", "failed", "error", "timeout", "cpu_limit", "memory_limit", "output_limit",
    "forbidden", "crashed",
)  # fmt: skip
_THREAD_LIMIT = "can't start new thread"


@dataclass(frozen=True)
class Outcome:
    status: str
    error_type: str = ""
    error: str = ""
    error_line: int | None = None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _place(line: object, file: object) -> str:
    """`line N` in the program, `tests.py line N` (or the preamble's) elsewhere."""
    return f"{file} line {line}" if file and file != "program.py" else f"line {line}"


def _describe(message: str, report: dict[str, Any]) -> str:
    """`message at line N: <statement>`, plus the test statement that led there if different."""
    where = ""
    line, text = report.get("line"), report.get("text")
    if line:
        place = _place(line, report.get("file"))
        where = f"{place}: {text}" if text else place
        origin_line, origin_text = report.get("origin_line"), report.get("origin_text")
        if origin_line and origin_text:
            where += f" (from {_place(origin_line, report.get('origin_file'))}: {origin_text})"
    if message and where:
        return f"{message} at {where}"
    return message or where


def _line(report: dict[str, Any]) -> int | None:
    line = report.get("line")
    return line if isinstance(line, int) and not isinstance(line, bool) else None


def _program_exited(
    report: dict[str, Any], program: dict[str, Any] | None, limits: Limits
) -> Outcome:
    """The program's process ended before answering: its exit status says why."""
    during = str(report.get("during") or "during a call")
    status = (program or {}).get("exit_code")
    if isinstance(status, int) and status < 0:
        outcome = _from_signal(-status, program or {}, limits)
        return Outcome(outcome.status, outcome.error_type, f"{outcome.error} {during}")
    if status == EXIT_SETUP_FAILED:
        text = "the sandbox could not isolate the program's process (see stderr)"
        return Outcome("error", "SandboxSetupError", text)
    text = f"the program's process exited with status {status} {during}"
    return Outcome("error", "ProgramExited", _describe(text, report), _line(report))


def _from_report(
    report: dict[str, Any],
    exit_code: int,
    limits: Limits,
    reply_program: dict[str, Any] | None = None,
    split: bool = False,
) -> Outcome:
    kind = str(report.get("type") or "")
    if report.get("phase") == "setup":  # the program never ran (the server's self-test and
        # the attack suite make this rare; it is not the program's fault, and says so)
        text = f"the sandbox could not isolate the run: {kind}: {report.get('message')}"
        return Outcome("error", "SandboxSetupError", text)
    message = str(report.get("message") or "")
    line = _line(report)
    if not kind:
        if exit_code == 0 and (split is False or report.get("verdict") == "passed"):
            return Outcome("passed")
        return Outcome("error", "HarnessError", f"harness reported success but exited {exit_code}")
    if kind == "ProgramExited":
        return _program_exited(report, reply_program, limits)
    if kind == "NotPlainData":
        return Outcome("failed", kind, _describe(message, report), line)
    if kind == "UnsupportedTest":
        return Outcome("error", kind, _describe(message, report), line)
    if report.get("phase") == "tests":
        text = f"the task's tests do not compile: {kind}: {message}"
        return Outcome("error", "TestsError", _describe(text, report), line)
    if report.get("denied"):
        text = f"the sandbox refused {report['denied']} ({kind}: {message})"
        return Outcome("forbidden", kind, _describe(text, report), line)
    if kind == "AssertionError":
        return Outcome("failed", kind, _describe(message, report), line)
    if kind == "MemoryError":
        message = message or f"memory limit of {limits.memory_mb} MB exceeded"
        return Outcome("memory_limit", kind, _describe(message, report), line)
    if kind == "RuntimeError" and _THREAD_LIMIT in message:
        text = (
            f"{message}: thread stacks count against the {limits.memory_mb} MB address-space limit"
        )
        return Outcome("memory_limit", kind, _describe(text, report), line)
    if report.get("errno") == errno.EFBIG:
        text = f"file size limit of {limits.file_size_mb} MB exceeded ({kind}: {message})"
        return Outcome("output_limit", "FileSizeLimit", _describe(text, report), line)
    if kind == "SystemExit":
        text = _describe(f"SystemExit({message})", report) + "; exiting early skips the tests"
        return Outcome("error", kind, text, line)
    return Outcome("error", kind, _describe(message, report), line)


def _from_signal(sig: int, reply: dict[str, Any], limits: Limits) -> Outcome:
    name = _signal_name(sig)
    cpu_s = float(reply.get("cpu_s") or 0.0)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_s >= limits.cpu_s):
        return Outcome("cpu_limit", "CPULimit", f"CPU time limit of {limits.cpu_s}s exceeded")
    if sig == signal.SIGXFSZ:
        msg = f"file size limit of {limits.file_size_mb} MB exceeded"
        return Outcome("output_limit", "FileSizeLimit", msg)
    if sig == signal.SIGSYS:
        return Outcome("forbidden", name, "a system call was refused by the sandbox (SIGSYS)")
    return Outcome("crashed", name, f"process killed by {name}")


def _running(report: dict[str, Any] | None) -> str:
    """What a split run was doing when it ended without a verdict: loading, or which call."""
    phase = (report or {}).get("phase")
    if phase == "loading":
        return " while the program loaded"
    if phase == "calling":
        return f" during {report['call']}" if report and report.get("call") else ""
    if phase == "testing":
        return f" in the tests, after {report['after']}" if report and report.get("after") else ""
    return ""


def classify(
    reply: dict[str, Any], report: dict[str, Any] | None, overflow: str, limits: Limits
) -> Outcome:
    """Decide the status of one run."""
    killed = reply.get("killed") or ""
    if overflow:
        msg = f"{overflow} exceeded the {limits.output_bytes}-byte output limit"
        return Outcome("output_limit", "OutputLimit", msg)
    if killed == "disk":
        why = reply.get("why") or f"files in the scratch dir exceeded the {limits.disk_mb} MB limit"
        return Outcome("output_limit", "DiskLimit", f"{why} (disk limit)")
    if killed == "timeout":
        text = f"wall-clock timeout after {limits.timeout_s:g}s{_running(report)}"
        return Outcome("timeout", "Timeout", text)
    exit_code = int(reply["exit_code"])
    if exit_code < 0:
        outcome = _from_signal(-exit_code, reply, limits)
        return Outcome(outcome.status, outcome.error_type, outcome.error + _running(report))
    if report is not None and report.get("phase") in ("loading", "calling", "testing"):
        text = f"the tests' process exited with status {exit_code} and no verdict{_running(report)}"
        return Outcome("error", "HarnessError", text)
    if report is not None:
        return _from_report(report, exit_code, limits, reply.get("program"), "program" in reply)
    if exit_code == 0:  # os._exit(0) or similar: the harness never got to say the tests ran
        msg = "program exited with status 0 before the tests finished (os._exit?)"
        return Outcome("error", "SystemExit", msg)
    msg = f"exited with status {exit_code} and no report (os._exit, or a failed start: see stderr)"
    return Outcome("error", "SystemExit", msg)
