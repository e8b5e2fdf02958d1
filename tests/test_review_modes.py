"""AIMESH_REVIEW: which solutions reach the model for review, on a real worker and broker.

Each mode runs its own worker on its own embedded broker: two workers on one broker would
both take every task. The scripted LLM logs each request, so the tests read what the reviewer
was asked, not only what it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aimesh.embedded.broker import start_tansu
from aimesh.embedded.processes import free_port, stop
from testbed.kafka_io import produce
from testbed.mesh import LLMThread, Worker, json_key, worker_env
from testbed.mesh_tasks import new_task


def _reviews_asked(llm: LLMThread, cycle_id: str) -> list[str]:
    return [
        chat["messages"][-1]["content"]
        for chat in llm.llm.chats
        if "review" in chat["messages"][0]["content"].lower()
        and cycle_id in chat["messages"][-1]["content"]
    ]


@pytest.fixture(scope="module")
def passed_only(
    tmp_path_factory: pytest.TempPathFactory, scripted_llm: LLMThread
) -> Iterator[tuple[Worker, str]]:
    root: Path = tmp_path_factory.mktemp("review-passed")
    broker, url = start_tansu()
    port = free_port()
    env = worker_env(root, url, scripted_llm.host, port)
    env["AIMESH_REVIEW"] = "passed"
    running = Worker(root, env, port)
    try:
        running.start()
        yield running, url
    finally:
        running.stop()
        stop(broker)


def test_with_review_passed_only_passing_code_reaches_the_model(passed_only, scripted_llm):
    worker, url = passed_only
    task = new_task("[fix]")
    produce(url, "ai_topic", (json_key(task.cycle_id), task.dumps()))
    cycle = worker.wait_cycle(task.cycle_id, timeout=90)
    assert (cycle["outcome"], int(cycle["attempts"])) == ("passed", 2)
    failed, passed = worker.attempts(task.cycle_id)
    assert failed["status"] == "failed" and failed["review_score"] == ""
    assert failed["critique"] == "Not reviewed: the code failed its tests (AIMESH_REVIEW=passed)."
    assert passed["status"] == "passed" and float(passed["review_score"]) == 0.8
    (asked,) = _reviews_asked(scripted_llm, task.cycle_id)
    assert "The code passed these tests." in asked
    assert "assert add(1, 2) == 3" in asked and "return a + b" in asked
