"""One cycle, plainly (aimesh.cycle.pipeline), with real engines and no broker: the scripted LLM
over HTTP, the embedded memory, the jailed sandbox, the CSV archive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aimesh.archive import CycleArchive
from aimesh.cycle.pipeline import Pipeline
from aimesh.llm.client import LLM
from aimesh.memory import open_memory
from aimesh.memory.skill import FAILURE
from aimesh.sandbox import Limits, PoolConfig, configure
from testbed.mesh import LLMThread
from testbed.mesh_tasks import new_task
from testbed.scripted_llm import CHAT_MODEL, EMBED_MODEL


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMThread]:
    server = LLMThread().start()
    yield server
    server.stop()


def pipeline(llm_server: LLMThread, root: Path, max_fixes: int) -> Pipeline:
    llm = LLM(llm_server.host, CHAT_MODEL, EMBED_MODEL, timeout=30)
    return Pipeline(
        llm=llm,
        memory=open_memory(llm.embed, EMBED_MODEL, url=None, path=root / "qdrant"),
        sandbox=configure(PoolConfig()),
        limits=Limits(timeout_s=5),
        archive=CycleArchive(root / "tables"),
        max_fixes=max_fixes,
        memory_k=3,
    )


async def test_a_cycle_fixes_its_code_and_is_archived(
    llm_server: LLMThread, tmp_path: Path
) -> None:
    cycles = pipeline(llm_server, tmp_path, max_fixes=2)
    try:
        task = new_task("[fix]")  # wrong code first, right code when asked to fix it
        assert await cycles.cycle(task) == "passed"
        attempts = cycles.archive.attempts.read()
        assert attempts["status"].tolist() == ["failed", "passed"]
        assert attempts["cycle_id"].tolist() == [task.cycle_id] * 2
        cycle = cycles.archive.cycles.read().to_dict("records")
        assert [(row["outcome"], int(row["attempts"])) for row in cycle] == [("passed", 2)]
        assert (await cycles.memory.count())[FAILURE] == 1  # the failure was remembered
    finally:
        await cycles.memory.close()
        await cycles.llm.close()


async def test_a_cycle_gives_up_when_its_fixes_are_spent(
    llm_server: LLMThread, tmp_path: Path
) -> None:
    cycles = pipeline(llm_server, tmp_path, max_fixes=1)
    try:
        assert await cycles.cycle(new_task("[fail]")) == "gave_up"
        assert cycles.archive.attempts.read()["status"].tolist() == ["failed", "failed"]
    finally:
        await cycles.memory.close()
        await cycles.llm.close()
