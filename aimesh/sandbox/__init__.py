"""Run LLM-written Python against its tests in an isolated child process (no Faust/Kafka here)."""

from aimesh.sandbox.classify import STATUSES
from aimesh.sandbox.forkserver import SandboxUnavailable
from aimesh.sandbox.limits import Limits
from aimesh.sandbox.pool import PoolConfig, ServerPool, configure
from aimesh.sandbox.program import build_program
from aimesh.sandbox.runner import (
    SAME_PROCESS,
    SPLIT,
    RunResult,
    active_layers,
    run_program,
    run_tests,
)

__all__ = [
    "SAME_PROCESS",
    "SPLIT",
    "STATUSES",
    "Limits",
    "PoolConfig",
    "RunResult",
    "SandboxUnavailable",
    "ServerPool",
    "active_layers",
    "build_program",
    "configure",
    "run_program",
    "run_tests",
]
