"""The chat models one embedded server answers for: any installed catalog model, by name.

A backend is made on first use and kept, so each model loads once. Tests pass fixed backends
instead (`ChatModels.fixed`), so the HTTP layer never needs a real model to be tested.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aimesh.llm.backends import DEFAULT_CONTEXT, ChatBackend, LlamaChat
from aimesh.llm.catalog import CATALOG, DEFAULT_PARALLEL, UnknownModel, lookup
from aimesh.llm.model_store import missing_parts, require_installed


class ChatModels:
    """Name -> chat backend; only the catalog's models, or only the fixed ones when given."""

    def __init__(
        self,
        models_dir: Path,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        parallel: int = DEFAULT_PARALLEL,
        fixed: tuple[ChatBackend, ...] = (),
    ) -> None:
        self.models_dir = models_dir
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._parallel = parallel
        self._fixed = fixed
        self._made: dict[str, ChatBackend] = {}
        self._lock = threading.Lock()
        self.pull_lock = asyncio.Lock()  # two pulls at once would run two pips on one venv

    @classmethod
    def fixed(cls, *backends: ChatBackend) -> ChatModels:
        """Exactly these backends, nothing from the catalog (nor any pull)."""
        return cls(Path("."), fixed=backends)

    def _fixed_named(self, name: str) -> ChatBackend | None:
        bare = name.removesuffix(":latest")
        return next((b for b in self._fixed if b.name in (name, bare)), None)

    def get(self, name: str) -> ChatBackend:
        """The backend for `name`; UnknownModel or ModelNotInstalled say why there is none."""
        if self._fixed:
            backend = self._fixed_named(name)
            if backend is None:
                raise UnknownModel(f"unknown model {name!r}")
            return backend
        spec = lookup(name)
        with self._lock:
            if spec.name not in self._made:
                require_installed(spec)
                self._made[spec.name] = LlamaChat(
                    spec,
                    self.models_dir,
                    n_ctx=self._n_ctx,
                    n_threads=self._n_threads,
                    parallel=self._parallel,
                )
            return self._made[spec.name]

    def installed(self) -> list[ChatBackend]:
        """Every model that can answer now: the fixed ones, or the catalog's installed ones."""
        if self._fixed:
            return list(self._fixed)
        return [self.get(spec.name) for spec in CATALOG.values() if not missing_parts(spec)]

    @property
    def pulls(self) -> bool:
        """Whether /api/pull may install models (not for a fixed set)."""
        return not self._fixed

    def names(self) -> set[str]:
        return {backend.name for backend in self._fixed} if self._fixed else set(CATALOG)
