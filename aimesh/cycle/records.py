"""The typed records on the mesh's topics, with the checks each agent applies on arrival.

Every record carries `cycle_id` (the root task id, also the message key) and `attempt`, so each
handler can be idempotent on (cycle_id, attempt) and one cycle's life stays on one partition.
"""

from __future__ import annotations

import time
from typing import Any

import faust

from aimesh.sandbox import STATUSES
from aimesh.sandbox.limits import overrides_problem

MAX_ID = 128
MAX_TEXT = 64_000
OUTCOMES = ("", "passed", "gave_up")
TELEMETRY_TYPES = ("log", "metric", "event")


def now() -> float:
    return time.time()


def _id_problems(cycle_id: str, attempt: int) -> list[str]:
    problems = []
    if not isinstance(cycle_id, str) or not cycle_id or len(cycle_id) > MAX_ID:
        problems.append(f"cycle_id must be a non-empty string of at most {MAX_ID} characters")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        problems.append("attempt must be an integer >= 1")
    return problems


def _text_problems(record: faust.Record, *names: str) -> list[str]:
    problems = []
    for name in names:
        value = getattr(record, name)
        if not isinstance(value, str):
            problems.append(f"{name} must be a string")
        elif len(value) > MAX_TEXT:
            problems.append(f"{name} is {len(value)} characters, over the {MAX_TEXT} limit")
    return problems


class Task(faust.Record, serializer="json", include_metadata=False):
    """A programming task; attempt > 1 marks a fix task whose prompt starts `FIX THIS CODE:`."""

    cycle_id: str
    attempt: int
    title: str
    description: str
    tests: str
    function_name: str = ""
    signature: str = ""
    entry_point: str = ""
    prompt: str = ""
    preamble: str = ""  # the task's trusted code, run before the solution
    tests_hidden: bool = False  # a benchmark's tests: never shown in the prompt
    previous_code: str = ""
    previous_error: str = ""
    source: str = "llm"
    limits: dict[str, float] = {}  # this task's own sandbox limits, e.g. {"timeout_s": 30}
    created_at: float = 0.0

    def problems(self) -> list[str]:
        found = _id_problems(self.cycle_id, self.attempt)
        found += _text_problems(
            self, "title", "description", "tests", "prompt", "preamble", "previous_code"
        )
        if problem := overrides_problem(self.limits):
            found.append(problem)
        if isinstance(self.tests, str) and not self.tests.strip():
            found.append("tests are empty")
        if self.entry_point and not (
            isinstance(self.entry_point, str) and self.entry_point.isidentifier()
        ):
            found.append("entry_point must be a Python identifier")
        return found


class Solution(faust.Record, serializer="json", include_metadata=False):
    """The Consumer's code for one attempt, with its task, so the Sandbox needs no join."""

    cycle_id: str
    attempt: int
    task: Task
    code: str
    model: str = ""
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    memories: list[str] = []
    note: str = ""
    created_at: float = 0.0

    def problems(self) -> list[str]:
        found = _id_problems(self.cycle_id, self.attempt)
        found += _text_problems(self, "code")
        if not isinstance(self.task, Task):
            found.append("task must be a Task record")
        else:
            found += [f"task: {p}" for p in self.task.problems()]
            if self.task.cycle_id != self.cycle_id or self.task.attempt != self.attempt:
                found.append("task's cycle_id/attempt differ from the solution's")
        return found


class Verdict(faust.Record, serializer="json", include_metadata=False):
    """What the Sandbox saw; `outcome` is set on the verdict that ends the cycle."""

    cycle_id: str
    attempt: int
    status: str
    passed: bool
    exit_code: int | None = None
    error_type: str = ""
    error: str = ""
    error_line: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    outcome: str = ""
    fixes_left: int = 0
    layers: list[str] = []
    mode: str = ""  # which sandbox mode judged it: "split" (the tests in their own process)
    created_at: float = 0.0

    def problems(self) -> list[str]:
        found = _id_problems(self.cycle_id, self.attempt)
        if self.status not in STATUSES:
            found.append(f"status must be one of {', '.join(STATUSES)}")
        if self.outcome not in OUTCOMES:
            found.append("outcome must be '', 'passed' or 'gave_up'")
        return found + _text_problems(self, "error", "stdout", "stderr")


class Review(faust.Record, serializer="json", include_metadata=False):
    """The Reviewer's critique of one solution; `valid` is False when the LLM gave bad JSON."""

    cycle_id: str
    attempt: int
    score: float | None
    critique: str
    issues: list[str] = []
    valid: bool = True
    model: str = ""
    latency_ms: float = 0.0
    created_at: float = 0.0

    def problems(self) -> list[str]:
        found = _id_problems(self.cycle_id, self.attempt)
        if self.score is not None and not (
            isinstance(self.score, (int, float)) and 0.0 <= self.score <= 1.0
        ):
            found.append("score must be a number from 0 to 1, or null")
        return found + _text_problems(self, "critique")


class Telemetry(faust.Record, serializer="json", include_metadata=False):
    """The seed schema exactly: agent, type (log|metric|event), message, value, timestamp, extra."""

    agent: str
    type: str
    message: str
    value: float | None = None
    timestamp: float = 0.0
    extra: dict[str, Any] = {}

    def problems(self) -> list[str]:
        found = [] if self.type in TELEMETRY_TYPES else ["type must be log, metric or event"]
        return found + _text_problems(self, "agent", "message")


class DeadLetter(faust.Record, serializer="json", include_metadata=False):
    """A message an agent could not use, kept whole with the reason, so nothing is lost."""

    topic: str
    reason: str
    payload: str
    key: str = ""
    agent: str = ""
    partition: int | None = None
    offset: int | None = None
    timestamp: float = 0.0
