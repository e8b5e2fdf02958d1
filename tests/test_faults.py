"""Nothing lost, nothing done twice, under faults: each test is a bounded run of planned cycles with
a fault in the middle, checked at the end by `MeshRun.check` (every cycle exactly once in
cycles.csv, every attempt row exactly once, the planned retry counts).

Tests marked `kafka` need Apache Kafka (scripts/kafka.sh: a fresh cluster per test, logs on
disk); those Tansu can support run on the embedded broker too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aimesh.embedded.broker import start_tansu
from aimesh.embedded.processes import free_port, stop
from testbed.kafka_io import read_topic, replica_counts
from testbed.mesh import LLMThread, Worker, worker_env
from tests.fault_run import EXPECTED, MeshRun, record_recovery
from tests.kafka_cluster import KafkaCluster

CYCLES = 12
LLM_DELAY_S = 0.2  # per chat: long enough for a fault to land mid-run
# A dead member's partitions move after its session times out; 10 s keeps the suite short.
FAST_FAILOVER = {"AIMESH_SESSION_TIMEOUT": "10"}


@dataclass
class Broker:
    kind: str
    url: str
    cluster: KafkaCluster | None = None


def _kafka(root: Path, brokers: int) -> Iterator[Broker]:
    cluster = KafkaCluster(root / "kafka", brokers).start()
    try:
        yield Broker("kafka", cluster.url, cluster)
    finally:
        cluster.stop()


@pytest.fixture(params=[pytest.param("kafka", marks=pytest.mark.kafka), "tansu"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker of either kind, for the faults Tansu can take too."""
    if request.param == "kafka":
        yield from _kafka(tmp_path, 1)
        return
    process, url = start_tansu()
    try:
        yield Broker("tansu", url)
    finally:
        stop(process)


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[Broker]:
    yield from _kafka(tmp_path, 1)


@pytest.fixture
def llm() -> Iterator[LLMThread]:
    server = LLMThread(delay=LLM_DELAY_S).start()
    yield server
    server.stop()


@pytest.fixture
def run_factory(tmp_path: Path, llm: LLMThread) -> Iterator[type]:
    runs: list[MeshRun] = []

    def make(broker: Broker, **env: str) -> MeshRun:
        run = MeshRun(tmp_path / f"run-{len(runs)}", broker.url, llm.host, CYCLES, **env)
        run.root.mkdir()
        runs.append(run)
        return run

    yield make  # type: ignore[misc]
    for run in runs:
        run.stop()


def _mid_run(run: MeshRun) -> None:
    """Wait until a few attempts are archived and most cycles are still open."""
    run.wait_for("the run under way", lambda: run.attempt_rows() >= 4, 120)
    assert run.finished() < len(run.tasks) - 2, "the run ended before the fault; slow the LLM"


def _kill_mid_run_and_restart(run: MeshRun) -> tuple[float, float]:
    """One worker, killed with -9 mid-run and started again; the run checked at its end.
    Returns the seconds from the restart to the first new row, and from there to the end."""
    worker = run.add_worker()
    run.send()
    _mid_run(run)
    worker.kill()
    worker.start()
    return run.recover_and_finish()


def test_a_worker_killed_mid_run_restarts_and_finishes_every_cycle_once(broker, run_factory):
    resumed, total = _kill_mid_run_and_restart(run_factory(broker, **FAST_FAILOVER))
    record_recovery(
        "kill -9, restart", broker.kind, first_row_after_restart=resumed, then_all_done=total
    )


def test_two_workers_share_the_work_take_over_and_rebalance(broker, run_factory):
    run = run_factory(broker, **FAST_FAILOVER)
    first, second = run.add_worker(), run.add_worker()
    run.wait_for("both hold partitions", lambda: _split(run, first, second), 60)
    run.send()
    _mid_run(run)
    second.kill()
    takeover = run.wait_for("the survivor holds all", lambda: run.assigned(first) == ALL, 90)
    run.wait_finished()
    second.start()
    back = run.wait_for("both hold partitions again", lambda: _split(run, first, second), 90)
    chats_before = _chats(second)
    more = run.plan(CYCLES)
    run.send(more)
    finished = run.wait_finished()
    run.check()
    assert _chats(first) and _chats(second) > chats_before, "a worker got none of the new work"
    record_recovery(
        "two workers, one killed", broker.kind, takeover=takeover, rebalance_after_return=back,
        second_batch_done=finished,
    )  # fmt: skip


ALL = [0, 1, 2, 3]


def _split(run: MeshRun, first: Worker, second: Worker) -> bool:
    """Both workers hold some partitions of ai_topic, together all of them."""
    mine, theirs = run.assigned(first), run.assigned(second)
    return bool(mine and theirs) and sorted(mine + theirs) == ALL


def _chats(worker: Worker) -> int:
    """How many chats this worker's current life has had with the LLM (its status view)."""
    status = httpx.get(f"{worker.web}/api/status", timeout=10).json()
    return int(status["parts"]["llm"]["calls"].get("chat", 0))


@pytest.mark.kafka
def test_workers_ride_out_a_broker_restart(kafka, run_factory):
    run = run_factory(kafka, **FAST_FAILOVER)
    run.add_worker()
    run.send()
    _mid_run(run)
    kafka.cluster.kill_broker(1)
    time.sleep(5)
    kafka.cluster.start_broker(1)
    resumed, total = run.recover_and_finish()
    record_recovery(
        "broker kill -9, 5 s down", "kafka", first_row_after_return=resumed, then_all_done=total
    )


@pytest.mark.kafka
def test_a_three_broker_cluster_loses_a_broker_and_nothing_is_lost(tmp_path, run_factory):
    for kafka3 in _kafka(tmp_path, 3):
        run = run_factory(kafka3, AIMESH_REPLICATION="3", **FAST_FAILOVER)
        run.add_worker()
        run.send()
        _mid_run(run)
        for topic in ("ai_topic", "ai_solutions", "aimesh-retry_budget-changelog"):
            assert replica_counts(kafka3.url, topic) == [3, 3, 3, 3], topic
        kafka3.cluster.kill_broker(2)
        resumed, total = run.recover_and_finish()
        record_recovery(
            "1 of 3 brokers killed", "kafka", first_row_after_kill=resumed, then_all_done=total
        )


def _keys(url: str, topic: str) -> Counter:
    """(cycle, attempt) of every committed record on a topic."""
    found = read_topic(url, topic, committed=True)
    return Counter((value["cycle_id"], value["attempt"]) for _, value in found)


@pytest.mark.kafka
def test_exactly_once_leaves_no_duplicate_after_a_kill(kafka, run_factory):
    run = run_factory(kafka, AIMESH_EXACTLY_ONCE="1", **FAST_FAILOVER)
    resumed, total = _kill_mid_run_and_restart(run)
    for topic in ("ai_solutions", "ai_reviews", "ai_verified_solutions", "ai_failed_solutions"):
        counted = _keys(kafka.url, topic)
        twice = [key for key, seen in counted.items() if seen > 1]
        assert not twice, f"{topic} holds committed duplicates: {twice}"
    fixes = Counter({key: seen for key, seen in _keys(kafka.url, "ai_topic").items() if key[1] > 1})
    planned = sum(EXPECTED[marker][0] - 1 for marker in run.markers.values())
    assert set(fixes.values()) == {1} and len(fixes) == planned, fixes
    record_recovery(
        "exactly-once, kill -9", "kafka", first_row_after_restart=resumed, then_all_done=total
    )


@pytest.mark.kafka
def test_exactly_once_producer_feeds_partitions_of_another_worker(kafka, run_factory):
    """New tasks are not the output of a consumed message: the leader's Producer must reach
    partitions it does not own, which a transactional send could not."""
    run = run_factory(kafka, AIMESH_EXACTLY_ONCE="1", AIMESH_TASK_INTERVAL="0.1")
    run.env.update(AIMESH_TASKS=str(run.task_file()), AIMESH_MAX_TASKS="")
    first = run.add_worker()
    second = run.add_worker()
    run.wait_for("both hold partitions", lambda: _split(run, first, second), 60)
    run.wait_finished()
    run.check()


def test_exactly_once_is_refused_with_a_clear_error_on_tansu(tmp_path, llm):
    process, url = start_tansu()
    try:
        env = worker_env(tmp_path, url, llm.host, free_port()) | {"AIMESH_EXACTLY_ONCE": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "aimesh", "worker"], env=env, capture_output=True, text=True,
            timeout=60, cwd=tmp_path,
        )  # fmt: skip
    finally:
        stop(process)
    assert done.returncode == 2, done.stderr
    assert "AIMESH_EXACTLY_ONCE=1 needs a broker with transactions" in done.stderr
    assert "WriteTxnMarkers" in done.stderr


def test_an_llm_outage_of_30_s_is_ridden_out_and_shown_in_telemetry(broker, run_factory, llm):
    run = run_factory(broker)
    run.add_worker()
    run.send()
    _mid_run(run)
    llm.pause()
    down = time.monotonic()
    time.sleep(30)
    llm.resume()
    resumed, total = run.recover_and_finish()
    telemetry = [value for _, value in read_topic(broker.url, "ai_telemetry")]
    outage = [t for t in telemetry if t["agent"] == "llm"]
    messages = [t["message"] for t in outage]
    assert "llm_unreachable" in messages and "llm_recovered" in messages, messages
    seconds = max(t["value"] for t in outage if t["message"] == "llm_recovered")
    assert 25 <= seconds <= time.monotonic() - down, seconds
    record_recovery(
        "LLM down 30 s", broker.kind, first_row_after_return=resumed, then_all_done=total
    )
