"""Memory round trip through the real client stack: Ollama's embed API, then Qdrant's embedded
engine; and the move of an older version's memory (qdrant-client's local mode) into it."""

import asyncio
import logging

import pytest
from qdrant_client import AsyncQdrantClient

from aimesh.llm.client import LLM
from aimesh.memory import MemoryMismatchError, MemorySkill, open_memory
from aimesh.memory.client_store import ClientStore
from aimesh.memory.skill import FAILURE, LESSON
from testbed.scripted_llm import CHAT_MODEL, EMBED_MODEL


@pytest.fixture
async def llm(scripted_llm):
    client = LLM(scripted_llm.host, CHAT_MODEL, EMBED_MODEL)
    yield client
    await client.close()


async def test_a_stored_failure_is_found_again_by_a_similar_error(llm, tmp_path):
    memory = open_memory(llm.embed, EMBED_MODEL, url=None, path=tmp_path / "q")
    await memory.remember(
        FAILURE, cycle_id="c1", attempt=1, task="add numbers", code="def add(a, b): return a - b",
        error="AssertionError: assert add(1, 2) == 3",
    )  # fmt: skip
    await memory.remember(
        FAILURE, cycle_id="c2", attempt=1, task="split words", code="def split(s): return s[0]",
        error="IndexError: string index out of range",
    )  # fmt: skip
    await memory.remember(
        LESSON, cycle_id="c3", attempt=2, task="split words", code="def split(s): return s.split()",
        error="IndexError: string index out of range",
    )  # fmt: skip
    found = await memory.recall("AssertionError: assert add(2, 2) == 4", k=1)
    assert [(m.cycle_id, m.kind) for m in found] == [("c1", FAILURE)]
    assert "return a - b" in found[0].as_prompt()
    lesson = await memory.recall("IndexError: string index out of range", k=2)
    assert {m.kind for m in lesson} == {FAILURE, LESSON}
    assert await memory.count() == {FAILURE: 2, LESSON: 1}
    await memory.remember(
        FAILURE, cycle_id="c1", attempt=1, task="add numbers", code="x", error="AssertionError"
    )
    assert (await memory.count())[FAILURE] == 2, "redelivery replaces, never adds"
    others = await memory.recall("AssertionError: assert add(2, 2) == 4", k=3, exclude_cycle="c1")
    assert "c1" not in {m.cycle_id for m in others} and len(others) == 2
    await memory.close()


async def test_memory_persists_on_disk_and_refuses_another_model(llm, tmp_path):
    memory = open_memory(llm.embed, EMBED_MODEL, url=None, path=tmp_path / "q")
    await memory.remember(FAILURE, cycle_id="c", attempt=1, task="t", code="c", error="E: x")
    await memory.close()
    reopened = open_memory(llm.embed, EMBED_MODEL, url=None, path=tmp_path / "q")
    assert len(await reopened.recall("E: x", k=3)) == 1
    await reopened.close()
    other = open_memory(llm.embed, "another-model", url=None, path=tmp_path / "q")
    with pytest.raises(MemoryMismatchError, match="AIMESH_EMBED_MODEL='another-model'"):
        await other.recall("E: x", k=3)
    await other.close()


async def test_counts_of_a_stored_memory_are_read_before_any_recall(llm, tmp_path):
    """The dashboard asks for counts first, before the worker has embedded anything."""
    memory = open_memory(llm.embed, EMBED_MODEL, url=None, path=tmp_path / "q")
    assert await memory.count() == {FAILURE: 0, LESSON: 0}
    await memory.remember(LESSON, cycle_id="c", attempt=2, task="t", code="c", error="E: x")
    await memory.close()
    reopened = open_memory(llm.embed, EMBED_MODEL, url=None, path=tmp_path / "q")
    assert await reopened.count() == {FAILURE: 0, LESSON: 1}
    await reopened.close()


def _local_mode(llm, folder, model=EMBED_MODEL):
    """The embedded memory of versions before the engine: qdrant-client's local mode."""
    store = ClientStore(lambda: AsyncQdrantClient(path=str(folder)), "mem", indexed=False)
    return MemorySkill(store, llm.embed, model)


def _current(llm, root):
    """This version's embedded memory, with the older store where the settings put it."""
    return open_memory(
        llm.embed, EMBED_MODEL, url=None, path=root / "memory", collection="mem",
        legacy=root / "qdrant",
    )  # fmt: skip


async def test_an_older_versions_memory_is_moved_in_on_first_use(llm, tmp_path, caplog):
    old = _local_mode(llm, tmp_path / "qdrant")
    for n, error in enumerate(["AssertionError: add", "IndexError: split", "KeyError: 'x'"]):
        await old.remember(FAILURE, cycle_id=f"c{n}", attempt=1, task="t", code="c", error=error)
    await old.close()

    caplog.set_level(logging.WARNING, logger="aimesh.memory.move")
    memory = _current(llm, tmp_path)
    found = await memory.recall("IndexError: split", k=1)
    assert [(m.cycle_id, m.error) for m in found] == [("c1", "IndexError: split")]
    assert await memory.count() == {FAILURE: 3, LESSON: 0}
    await memory.close()
    assert "moved 3 memories of collection 'mem'" in caplog.text
    assert not (tmp_path / "qdrant").exists()
    assert [p.name.startswith("qdrant.moved-") for p in tmp_path.iterdir()].count(True) == 1

    again = _current(llm, tmp_path)
    assert (await again.count())[FAILURE] == 3  # moved once, kept
    await again.close()


async def test_an_older_memory_of_another_model_is_left_where_it_is(llm, tmp_path, caplog):
    old = _local_mode(llm, tmp_path / "qdrant", model="older-embedder")
    await old.remember(FAILURE, cycle_id="c", attempt=1, task="t", code="c", error="E: x")
    await old.close()
    caplog.set_level(logging.WARNING, logger="aimesh.memory.move")
    memory = _current(llm, tmp_path)
    assert await memory.recall("E: x", k=3) == []
    await memory.close()
    assert "holds vectors of 'older-embedder'" in caplog.text and "not moved" in caplog.text
    assert (tmp_path / "qdrant").is_dir()


async def test_an_error_text_is_embedded_once_for_its_failure_its_fix_and_its_lesson(llm, tmp_path):
    asked: list[str] = []
    gate = asyncio.Event()

    async def counted(texts: list[str]) -> list[list[float]]:
        asked.extend(texts)
        await gate.wait()
        return await llm.embed(texts)

    memory = open_memory(counted, EMBED_MODEL, url=None, path=tmp_path / "q")
    error = "AssertionError: assert add(1, 2) == 3"
    failure = asyncio.ensure_future(
        memory.remember(FAILURE, cycle_id="c1", attempt=1, task="add", code="a - b", error=error)
    )
    recall = asyncio.ensure_future(memory.recall(error, k=3, exclude_cycle="c1"))
    await asyncio.sleep(0.05)
    gate.set()
    await failure
    assert await recall == []
    await memory.remember(LESSON, cycle_id="c1", attempt=2, task="add", code="a + b", error=error)
    assert asked == [error], "the recall while the failure was embedded shared its vector"
    await memory.recall("IndexError: list index out of range", k=1)
    assert asked == [error, "IndexError: list index out of range"]

    failing = open_memory(llm.embed, EMBED_MODEL, url=None, path=tmp_path / "r")
    calls = 0

    async def flaky(texts: list[str]) -> list[list[float]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("embedder away")
        return await llm.embed(texts)

    failing._embed = flaky
    with pytest.raises(ConnectionError):
        await failing.recall(error, k=1)
    assert await failing.recall(error, k=1) == [], "a failed embedding is not kept"
    await memory.close()
    await failing.close()
