"""Assemble the text the sandbox runs: the task's preamble, the solution, then its tests.

The preamble is the task's own trusted code (for HumanEval, the prompt with its imports and
helper functions), run before the solution as published pass@1 figures do, so a model is not
failed for an import the task itself provides. HumanEval tests only define `check(candidate)`,
so the call is added here.
"""

from __future__ import annotations

import re

_DEFINES_CHECK = re.compile(r"^def\s+check\s*\(", re.MULTILINE)
_CALLS_CHECK = re.compile(r"^check\s*\(", re.MULTILINE)


def build_program(code: str, tests: str, entry_point: str | None = None, preamble: str = "") -> str:
    """Join preamble, code and tests; plain assertion tests need nothing more."""
    if entry_point is not None and not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    parts = [code.rstrip() + "\n", tests.strip("\n") + "\n"]
    if preamble.strip():
        parts.insert(0, preamble.rstrip() + "\n")
    if entry_point and _DEFINES_CHECK.search(tests) and not _CALLS_CHECK.search(tests):
        parts.append(f"check({entry_point})\n")
    return "\n\n".join(parts)
