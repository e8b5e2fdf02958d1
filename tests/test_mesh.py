"""The whole mesh, as a user sees it: tasks go in on `ai_topic`, rows come out in `tables/`.

One real worker process runs against a real broker given by URL (the way a production worker
meets an external Kafka cluster) and a scripted LLM behind Ollama's HTTP API.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
from aiokafka.partitioner import murmur2

from aimesh.cycle.records import Review, Solution, Task, Verdict
from testbed.kafka_io import produce, read_topic
from testbed.mesh import MAX_FIXES, Worker, json_key
from testbed.mesh_tasks import new_task


def same_partition_as(cycle_id: str, partitions: int = 4) -> str:
    """A new cycle id whose messages land on the same partitions as `cycle_id`'s."""
    target = murmur2(json_key(cycle_id)) & 0x7FFFFFFF
    while True:
        candidate = f"pass-{uuid.uuid4().hex[:8]}"
        if (murmur2(json_key(candidate)) & 0x7FFFFFFF) % partitions == target % partitions:
            return candidate


def send(worker: Worker, broker_url: str, task: Task) -> str:
    produce(broker_url, "ai_topic", (json_key(task.cycle_id), task.dumps()))
    return task.cycle_id


def test_the_worker_runs_on_uvloop(worker):
    """`aimesh worker` asks Faust for uvloop (a dependency on Linux): its library is mapped."""
    assert worker.process is not None
    maps = Path(f"/proc/{worker.process.pid}/maps").read_text()
    assert "/uvloop/loop." in maps


def test_a_passing_cycle_is_archived_with_code_verdict_and_review(worker, broker_url):
    cycle_id = send(worker, broker_url, new_task("[pass]"))
    cycle = worker.wait_cycle(cycle_id)
    assert cycle["outcome"] == "passed"
    assert int(cycle["attempts"]) == 1
    (attempt,) = worker.attempts(cycle_id)
    assert "return a + b" in attempt["code"]
    assert attempt["status"] == "passed"
    assert float(attempt["review_score"]) == 0.8
    assert attempt["critique"] == "Clear and correct."
    assert attempt["model"] == "scripted-coder"
    verified = [v for k, v in read_topic(broker_url, "ai_verified_solutions") if k == cycle_id]
    assert [v["outcome"] for v in verified] == ["passed"]
    assert {"rlimits", "seccomp", "no-capabilities"} <= set(verified[0]["layers"])


def test_a_failure_comes_back_as_fix_this_code_then_passes(worker, broker_url):
    cycle_id = send(worker, broker_url, new_task("[fix]"))
    cycle = worker.wait_cycle(cycle_id)
    assert (cycle["outcome"], int(cycle["attempts"])) == ("passed", 2)
    first, second = worker.attempts(cycle_id)
    assert (first["status"], second["status"]) == ("failed", "passed")
    assert "assert add(1, 2) == 3" in first["error"]
    assert second["task"].startswith("FIX THIS CODE:")
    assert "return a - b" in second["task"] and "assert add(1, 2) == 3" in second["task"]
    tasks = [v for k, v in read_topic(broker_url, "ai_topic") if k == cycle_id]
    assert [t["attempt"] for t in tasks] == [1, 2]
    failed = [v for k, v in read_topic(broker_url, "ai_failed_solutions") if k == cycle_id]
    assert [(v["status"], v["outcome"]) for v in failed] == [("failed", "")]


def test_spent_retry_budget_ends_the_cycle_once_as_gave_up(worker, broker_url):
    cycle_id = send(worker, broker_url, new_task("[fail]"))
    cycle = worker.wait_cycle(cycle_id)
    assert (cycle["outcome"], int(cycle["attempts"])) == ("gave_up", MAX_FIXES + 1)
    assert [row["attempt"] for row in worker.attempts(cycle_id)] == [1, 2, 3]
    tasks = [v for k, v in read_topic(broker_url, "ai_topic") if k == cycle_id]
    assert [t["attempt"] for t in tasks] == [1, 2, 3], "no fix task beyond the budget"
    failed = [v for k, v in read_topic(broker_url, "ai_failed_solutions") if k == cycle_id]
    assert [v["outcome"] for v in failed] == ["", "", "gave_up"]
    assert [v["fixes_left"] for v in failed] == [1, 0, 0]
    assert sum(row["cycle_id"] == cycle_id for row in worker.cycles()) == 1


def test_redelivered_messages_create_no_second_row_or_fix(worker, broker_url):
    task = new_task("[fix]")
    send(worker, broker_url, task)
    send(worker, broker_url, task)
    worker.wait_cycle(task.cycle_id)
    for topic in ("ai_topic", "ai_solutions", "ai_failed_solutions", "ai_verified_solutions",
                  "ai_reviews"):  # fmt: skip
        again = [
            (json_key(task.cycle_id), json.dumps(v).encode())
            for k, v in read_topic(broker_url, topic)
            if k == task.cycle_id
        ]
        produce(broker_url, topic, *again)
    # A later cycle on the same partitions is archived only after every duplicate before it.
    marker = send(worker, broker_url, new_task("[pass]", same_partition_as(task.cycle_id)))
    worker.wait_cycle(marker)
    assert [row["attempt"] for row in worker.attempts(task.cycle_id)] == [1, 2]
    assert sum(row["cycle_id"] == task.cycle_id for row in worker.cycles()) == 1
    fixes = [v for k, v in read_topic(broker_url, "ai_topic") if k == task.cycle_id]
    assert sorted({t["attempt"] for t in fixes}) == [1, 2]
    solutions = [v for k, v in read_topic(broker_url, "ai_solutions") if k == task.cycle_id]
    seen = [(s["attempt"], s["created_at"]) for s in solutions]
    assert len(solutions) == 2 * 2, f"only the test's own re-sends, no new solution: {seen}"
    reviews = [v for k, v in read_topic(broker_url, "ai_reviews") if k == task.cycle_id]
    assert len(reviews) == 2 * 2, "only the test's own re-sends, no new review"


def test_a_stored_failure_is_recalled_into_another_cycles_prompts(worker, broker_url, scripted_llm):
    earlier = send(worker, broker_url, new_task("[fix]"))
    worker.wait_cycle(earlier)
    later = send(worker, broker_url, new_task("[fix]"))
    worker.wait_cycle(later)
    prompts = [
        chat["messages"][-1]["content"]
        for chat in scripted_llm.llm.chats
        if f"({later})" in chat["messages"][-1]["content"]
        and "Code:" not in chat["messages"][-1]["content"]
    ]
    first, fix = prompts
    for prompt in (first, fix):
        assert prompt.startswith("Lessons from similar past attempts:")
        assert "return a - b" in prompt.split("Task:")[0] and "failed with" in prompt
    assert "FIX THIS CODE:" in fix
    assert [int(row["memories_used"]) >= 1 for row in worker.attempts(later)] == [True, True]


def test_garbage_from_the_llm_is_a_clear_failed_attempt(worker, broker_url):
    no_code = send(worker, broker_url, new_task("[garbage]"))
    bad_json = send(worker, broker_url, new_task("[badjson]"))
    cycle = worker.wait_cycle(no_code)
    assert cycle["outcome"] == "gave_up"
    first = worker.attempts(no_code)[0]
    assert (first["status"], first["error_type"]) == ("error", "NoCode")
    assert "no Python code" in first["error"]
    worker.wait_cycle(bad_json)
    (reviewed,) = worker.attempts(bad_json)
    assert reviewed["status"] == "passed"
    assert str(reviewed["review_valid"]) == "False"
    assert reviewed["critique"].startswith("Review unavailable: not JSON")


def _invalid_records() -> dict[str, bytes]:
    """Well-formed JSON of the right shape whose values break the rules."""
    task = new_task("[pass]", cycle_id="invalid")
    bad_task = Task(**{**task.asdict(), "attempt": 0})
    return {
        "ai_topic": bad_task.dumps(),
        "ai_solutions": Solution(cycle_id="invalid", attempt=1, task=bad_task, code="x").dumps(),
        "ai_verified_solutions": Verdict(
            cycle_id="invalid", attempt=1, status="splendid", passed=True
        ).dumps(),
        "ai_failed_solutions": Verdict(
            cycle_id="", attempt=1, status="failed", passed=False
        ).dumps(),
        "ai_reviews": Review(cycle_id="invalid", attempt=1, score=7.0, critique="").dumps(),
    }


def test_malformed_messages_go_to_the_dead_letter_topic_and_agents_go_on(worker, broker_url):
    invalid = _invalid_records()
    for topic, payload in invalid.items():
        produce(broker_url, topic, (json_key(f"bad-{topic}"), b"{this is not json"))
        produce(broker_url, topic, (json_key(f"bad-{topic}"), b'{"cycle_id": "x"}'))
        produce(broker_url, topic, (json_key("invalid"), payload))
    survivor = send(worker, broker_url, new_task("[pass]"))
    assert worker.wait_cycle(survivor)["outcome"] == "passed"
    letters = [v for _, v in read_topic(broker_url, "ai_dead_letters")]
    for topic in invalid:
        mine = [letter for letter in letters if letter["topic"] == topic]
        reasons = [letter["reason"] for letter in mine]
        assert len(mine) == 3, f"one letter per bad message on {topic}: {reasons}"
        by_payload = {letter["payload"]: letter["reason"] for letter in mine}
        assert by_payload["{this is not json"].startswith("undecodable value"), reasons
        assert "missing" in by_payload['{"cycle_id": "x"}'], reasons
        assert by_payload[invalid[topic].decode()].startswith("invalid "), reasons


def test_telemetry_follows_the_seed_schema(worker, broker_url):
    cycle_id = send(worker, broker_url, new_task("[fix]"))
    worker.wait_cycle(cycle_id)
    deadline = time.monotonic() + 15  # the last record follows the archived row
    while True:
        records = [v for _, v in read_topic(broker_url, "ai_telemetry")]
        ours = [r for r in records if r["extra"].get("cycle_id") == cycle_id and r["type"] != "log"]
        archived = any(r["message"] == "cycle_archived" for r in ours)
        if archived or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert archived, f"no cycle_archived record for {cycle_id} in 15 s: {ours}"
    for record in records:
        assert set(record) == {"agent", "type", "message", "value", "timestamp", "extra"}
        assert record["type"] in ("log", "metric", "event")
        assert isinstance(record["timestamp"], float) and isinstance(record["extra"], dict)
    agents = {r["agent"] for r in records}
    assert {"consumer", "sandbox", "reviewer", "persistence"} <= agents
    assert {r["type"] for r in records} == {"log", "metric", "event"}
    names = {r["message"] for r in records}
    assert {"llm_latency_ms", "sandbox_ms", "review_score", "retry", "cycle_archived"} <= names
    # one record per step: a step's other figures ride in its record's extra
    first = {(r["agent"], r["message"]): r for r in reversed(ours)}
    coded = first[("consumer", "llm_latency_ms")]
    assert coded["value"] > 0 and coded["extra"]["completion_tokens"] > 0
    assert coded["extra"]["attempt"] == 1 and "memories_recalled" in coded["extra"]
    assert first[("sandbox", "sandbox_ms")]["extra"]["status"] == "failed"
    assert first[("reviewer", "review_score")]["extra"]["llm_latency_ms"] > 0
    assert first[("persistence", "cycle_archived")]["extra"] == {
        "cycle_id": cycle_id, "outcome": "passed", "attempts": 2,
    }  # fmt: skip


def telemetry(web_: str, **params: object) -> list[dict]:
    return httpx.get(f"{web_}/api/telemetry", params=params).json()["events"]


def test_json_views_report_the_run(worker, broker_url):
    for marker in ("[pass]", "[fix]"):
        worker.wait_cycle(send(worker, broker_url, new_task(marker)))
    web_ = worker.web
    summary = httpx.get(f"{web_}/api/summary").json()
    assert summary["cycles_finished"] >= 2 and summary["passed"] >= 2
    assert 0 <= summary["pass_rate_first_try"] <= summary["pass_rate_after_fixes"] <= 1
    assert summary["mean_llm_latency_ms"] is not None
    first = httpx.get(f"{web_}/api/cycles", params={"limit": 1}).json()
    assert len(first["cycles"]) == 1 and first["cycles"][0]["attempt_briefs"]
    assert first["total"] >= 2 and first["next"] == first["total"] - 1
    second = httpx.get(f"{web_}/api/cycles", params={"limit": 1, "before": first["next"]}).json()
    assert second["cycles"][0]["cycle_id"] != first["cycles"][0]["cycle_id"]
    deadline = time.monotonic() + 15  # the tail fetches once a second
    while not (events := telemetry(web_, limit=5)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert 0 < len(events) <= 5
    metrics = httpx.get(f"{web_}/api/telemetry", params={"agent": "sandbox", "type": "metric"})
    assert metrics.json()["events"]
    assert {(e["agent"], e["type"]) for e in metrics.json()["events"]} == {("sandbox", "metric")}
    status = httpx.get(f"{web_}/api/status").json()
    assert status["parts"]["broker"]["embedded"] is False
    assert status["parts"]["broker"]["reachable"] and status["parts"]["llm"]["reachable"]
    assert status["parts"]["llm"]["calls"]["chat"] >= 2 and status["parts"]["llm"]["calls"]["embed"]
    assert status["parts"]["memory"]["error"] == ""
    assert {"rlimits", "seccomp", "landlock-fs"} <= set(status["parts"]["sandbox"]["layers"])
    assert status["parts"]["memory"]["counts"]["failure"] >= 1
    assert all(status["agents"].values())
    series = httpx.get(f"{web_}/api/series", params={"buckets": 5}).json()
    assert 1 <= len(series["buckets"]) <= 5 and sum(b["cycles"] for b in series["buckets"]) >= 2
    assert {r["attempts"] for r in series["retries"]} >= {1, 2}
    memory = httpx.get(f"{web_}/api/memory").json()
    assert memory["counts"]["failure"] >= 1 and isinstance(memory["retrievals"], list)
    for path, params, word in (
        ("/api/cycles", {"limit": "0"}, "limit"),
        ("/api/cycles", {"limit": "-1"}, "limit"),
        ("/api/cycles", {"limit": "abc"}, "limit"),
        ("/api/cycles", {"limit": "100000"}, "limit"),
        ("/api/cycles", {"before": "x"}, "before"),
        ("/api/telemetry", {"type": "gossip"}, "type"),
        ("/api/telemetry", {"agent": "nobody"}, "agent"),
        ("/api/series", {"buckets": "0"}, "buckets"),
        ("/api/memory", {"limit": "many"}, "limit"),
    ):
        response = httpx.get(f"{web_}{path}", params=params)
        assert response.status_code == 400 and word in response.json()["error"], (path, params)
    assert httpx.get(f"{web_}/api/cycles/no-such-cycle").status_code == 404
    assert httpx.get(f"{web_}/web/secrets.txt").status_code == 404
    for path in ("/dashboard", "/"):
        page = httpx.get(f"{web_}{path}")
        assert page.status_code == 200 and "<title>AI-Mesh" in page.text, path
    assert httpx.get(f"{web_}/health").json() == {"status": "OK"}


def test_a_cycle_in_full_has_code_verdicts_reviews_and_memories(worker, broker_url):
    cycle_id = send(worker, broker_url, new_task("[fix]"))
    worker.wait_cycle(cycle_id)
    detail = httpx.get(f"{worker.web}/api/cycles/{cycle_id}").json()
    assert detail["cycle"]["outcome"] == "passed"
    first, second = detail["attempts"]
    assert first["status"] == "failed" and first["error"] and first["code"]
    assert second["status"] == "passed" and second["critique"]
    assert isinstance(second["memories"], list) and second["memories"]  # the fix recalled them
