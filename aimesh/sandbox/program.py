"""Assemble what the sandbox runs: the task's preamble, the solution, and its tests.

The preamble is the task's own trusted code (for HumanEval, the prompt with its imports and
helper functions), run before the solution as published pass@1 figures do, so a model is not
failed for an import the task itself provides. HumanEval tests only define `check(candidate)`,
so the call is added here. The split mode gets two sources (`split_sources`), the same-process
mode one text (`build_program`).
"""

from __future__ import annotations

import json
import re

_DEFINES_CHECK = re.compile(r"^def\s+check\s*\(", re.MULTILINE)
_CALLS_CHECK = re.compile(r"^check\s*\(", re.MULTILINE)


def build_program(code: str, tests: str, entry_point: str | None = None, preamble: str = "") -> str:
    """One text for the same-process mode (unsafe for verdicts): preamble, code, then tests."""
    parts = [code.rstrip() + "\n", with_check_call(tests, entry_point).strip("\n") + "\n"]
    if preamble.strip():
        parts.insert(0, preamble.rstrip() + "\n")
    return "\n\n".join(parts)


def with_check_call(tests: str, entry_point: str | None) -> str:
    """HumanEval's tests only define `check(candidate)`: add the call they leave out."""
    if entry_point is not None and not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    if entry_point and _DEFINES_CHECK.search(tests) and not _CALLS_CHECK.search(tests):
        return tests.rstrip("\n") + f"\n\n\ncheck({entry_point})\n"
    return tests


def split_sources(
    code: str, tests: str, entry_point: str | None = None, preamble: str = "", nonce: str = ""
) -> tuple[str, str]:
    """What each side of a split run reads: the program's (preamble, code) and the tests'
    (preamble, tests, the entry point: the one preamble name the program's replaces, and the
    nonce its report must carry)."""
    program = {"preamble": preamble, "code": code}
    judged = {"preamble": preamble, "tests": with_check_call(tests, entry_point), "nonce": nonce}
    return json.dumps(program), json.dumps({**judged, "entry_point": entry_point or ""})
