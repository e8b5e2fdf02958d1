"""Shared fixtures: a real broker (Tansu, over a real connection), a scripted LLM served over
Ollama's HTTP API, and one real mesh worker process pointed at both, as a user would run it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimesh.embedded.broker import start_tansu
from aimesh.embedded.processes import free_port, stop
from testbed.mesh import LLMThread, Worker, worker_env

KAFKA_TIER = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs Apache Kafka (scripts/kafka.sh, Java 17+)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the real-Kafka tier wherever Java can run Kafka; say plainly why when it cannot.
    Under CI=true a missing tier is an error, not a skip."""
    tier = [item for item in items if item.get_closest_marker("kafka")]
    if not tier:
        return
    from tests.kafka_cluster import VERSION, unavailable

    reason = unavailable()
    config.stash[KAFKA_TIER] = f"skipped: {reason}" if reason else f"on (Apache Kafka {VERSION})"
    if not reason:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI runs the real-Kafka tier, and it cannot run: {reason}")
    for item in tier:
        item.add_marker(pytest.mark.skip(reason=f"real-Kafka tier skipped: {reason}"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from tests.fault_run import RECOVERY

    if KAFKA_TIER in config.stash:
        terminalreporter.write_line(f"real-Kafka tier: {config.stash[KAFKA_TIER]}")
    if RECOVERY:
        terminalreporter.section("recovery times measured by the fault tests")
        for line in RECOVERY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """The embedded Tansu, or the broker AIMESH_TEST_BROKER_URL names (e.g. a real Kafka from
    scripts/kafka.sh), so the same tests run against either."""
    external = os.environ.get("AIMESH_TEST_BROKER_URL")
    if external:
        yield external
        return
    process, url = start_tansu()
    yield url
    stop(process)


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[LLMThread]:
    server = LLMThread().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def worker(
    tmp_path_factory: pytest.TempPathFactory, broker_url: str, scripted_llm: LLMThread
) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("mesh")
    port = free_port()
    running = Worker(root, worker_env(root, broker_url, scripted_llm.host, port), port)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def processes_with(marker: str) -> list[str]:
    """Processes whose environment holds `marker`: everything `aimesh up` started inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found
