"""Resource limits for one sandbox run, checked up front so a bad setting fails loudly, not late."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

_REAL_VALUED = frozenset({"timeout_s"})


@dataclass(frozen=True)
class Limits:
    """Caps applied to the child process; rlimits are per process, the wall clock per run."""

    timeout_s: float = 10.0  # wall clock for the whole run
    cpu_s: int = 5  # RLIMIT_CPU (soft; the hard limit is one second more)
    memory_mb: int = 512  # RLIMIT_AS
    file_size_mb: int = 16  # RLIMIT_FSIZE
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
