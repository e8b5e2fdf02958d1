"""Resource limits for one sandbox run, checked up front so a bad setting fails loudly, not late."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

_REAL_VALUED = frozenset({"timeout_s"})
# Ceilings a task's own limits may not exceed: a task file must not buy a run unbounded resources.
CEILINGS = {
    "timeout_s": 600.0,
    "cpu_s": 600,
    "memory_mb": 16_384,
    "file_size_mb": 1_024,
    "disk_mb": 4_096,
    "open_files": 1_024,
    "output_bytes": 16_000_000,
}


# The harness itself needs a few open files (stdio, the program, its report, the interpreter's).
FLOORS = {"open_files": 16}


@dataclass(frozen=True)
class Limits:
    """Caps on one run: rlimits on the child, the rest enforced by the server and the engine."""

    timeout_s: float = 10.0  # wall clock for the whole run
    cpu_s: int = 5  # RLIMIT_CPU (soft; the hard limit is one second more)
    memory_mb: int = 512  # RLIMIT_AS
    file_size_mb: int = 16  # RLIMIT_FSIZE, per file
    disk_mb: int = 64  # all files in the scratch dir together
    open_files: int = 64  # RLIMIT_NOFILE
    output_bytes: int = 64_000  # cap on stdout and on stderr, each

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name in _REAL_VALUED:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                ok = ok and math.isfinite(value) and value > 0
                kind = "a positive finite number"
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
                kind = "a positive integer"
            if not ok:
                raise ValueError(f"Limits.{spec.name} must be {kind}, got {value!r}")
            if value < FLOORS.get(spec.name, 0):
                raise ValueError(
                    f"Limits.{spec.name} is {value!r}, under its floor of {FLOORS[spec.name]}"
                )
            if value > CEILINGS[spec.name]:
                raise ValueError(
                    f"Limits.{spec.name} is {value!r}, over its ceiling of {CEILINGS[spec.name]}"
                )

    def with_overrides(self, overrides: Mapping[str, Any]) -> Limits:
        """These limits with a task's own; unknown names and bad values raise ValueError."""
        names = {spec.name for spec in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(
                f"unknown sandbox limit(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        values = {
            name: int(value)
            if name not in _REAL_VALUED and isinstance(value, float) and value.is_integer()
            else value
            for name, value in overrides.items()
        }  # JSON may spell 512 as 512.0
        return dataclasses.replace(self, **values)


def overrides_problem(overrides: object) -> str:
    """Why `overrides` cannot be a task's own limits (an object of Limits fields, within the
    ceilings), or "" when they can: the check a task file and a task message share."""
    if not isinstance(overrides, dict):
        return 'limits must be an object of sandbox limits, e.g. {"timeout_s": 30}'
    try:
        Limits().with_overrides(overrides)
    except (TypeError, ValueError) as exc:
        return f"limits: {exc}"
    return ""
