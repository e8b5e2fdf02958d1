"""The embedded LLM server in a thread of the test process, like a separate Ollama process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aimesh.llm.backends import E5Embedder
from aimesh.llm.chat_models import ChatModels
from aimesh.llm.server import build_app, start_server


@contextmanager
def serving(models_dir: Path) -> Iterator[str]:
    """The catalog's installed models and e5, served from a private loop; yields the host URL.

    One llama.cpp thread: on 2 busy cores, two spin-waiting threads ran 6-16x slower.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = build_app(ChatModels(models_dir, n_threads=1), E5Embedder())
    runner = asyncio.run_coroutine_threadsafe(start_server(app, "127.0.0.1", 0), loop).result()
    address, port = runner.addresses[0][:2]
    try:
        yield f"http://{address}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
