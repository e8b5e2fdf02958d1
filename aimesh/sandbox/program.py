"""Assemble the text the sandbox runs: solution, then tests, then HumanEval's `check` call."""

from __future__ import annotations

import re

_DEFINES_CHECK = re.compile(r"^def\s+check\s*\(", re.MULTILINE)
_CALLS_CHECK = re.compile(r"^check\s*\(", re.MULTILINE)


def build_program(code: str, tests: str, entry_point: str | None = None) -> str:
    """Join code and tests; HumanEval tests only define `check(candidate)`, so call it here.

    Plain assertion tests need nothing more: they run right after the code.
    """
    if entry_point is not None and not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    parts = [code.rstrip() + "\n", tests.strip("\n") + "\n"]
    if entry_point and _DEFINES_CHECK.search(tests) and not _CALLS_CHECK.search(tests):
        parts.append(f"check({entry_point})\n")
    return "\n\n".join(parts)
