"""Run LLM-written Python against its tests in a limited child process (no Faust/Kafka here)."""

from aimesh.sandbox.limits import Limits
from aimesh.sandbox.program import build_program
from aimesh.sandbox.runner import LAYERS, STATUSES, RunResult, run_program

__all__ = ["LAYERS", "STATUSES", "Limits", "RunResult", "build_program", "run_program"]
