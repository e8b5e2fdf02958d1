"""Tasks for the scripted LLM: the marker in the title decides how each cycle goes."""

from __future__ import annotations

import uuid

from aimesh.cycle.records import Task

TESTS = "assert add(1, 2) == 3\nassert add(0, 0) == 0\nassert add(-1, 1) == 0"


def new_task(marker: str, cycle_id: str | None = None) -> Task:
    cycle_id = cycle_id or f"{marker.strip('[]')}-{uuid.uuid4().hex[:8]}"
    title = f"{marker} add two numbers ({cycle_id})"
    return Task(
        cycle_id=cycle_id,
        attempt=1,
        title=title,
        description="Return the sum of a and b.",
        tests=TESTS,
        function_name="add",
        signature="def add(a, b):",
        prompt=f"Task: {title}\nReturn the sum of a and b.\n\nIt must pass these tests:\n{TESTS}",
        source="test",
    )
