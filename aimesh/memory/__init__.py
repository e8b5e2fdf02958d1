"""Vector memory of failures and lessons, so the Consumer learns from what went wrong before.

`skill` is the interface the agents use; `edge_store` (Qdrant's embedded engine, the default)
and `client_store` (a Qdrant server) are the stores behind it; `move` brings an older
version's memory into the embedded engine. The embedded engine runs in a process of its own,
`edge_server`, which keeps its shards in `tiers` and has them indexed by `index_builder`
processes; `wire` is how the worker talks to it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aimesh.memory.skill import Memory, MemorySkill, open_memory
    from aimesh.memory.store import MemoryMismatchError

__all__ = ["Memory", "MemoryMismatchError", "MemorySkill", "open_memory"]
_HOME = {
    "Memory": "skill",
    "MemorySkill": "skill",
    "open_memory": "skill",
    "MemoryMismatchError": "store",
}


def __getattr__(name: str) -> Any:
    """Imported on first use, so the engine and builder processes, which import only their own
    modules of this package, do not load qdrant-client and the rest (a second of start-up)."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
