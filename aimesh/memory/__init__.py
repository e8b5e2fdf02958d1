"""Vector memory of failures and lessons, so the Consumer learns from what went wrong before.

`skill` is the interface the agents use; `edge_store` (Qdrant's embedded engine, the default)
and `client_store` (a Qdrant server) are the stores behind it; `move` brings an older
version's memory into the embedded engine."""

from aimesh.memory.skill import Memory, MemorySkill, open_memory
from aimesh.memory.store import MemoryMismatchError

__all__ = ["Memory", "MemoryMismatchError", "MemorySkill", "open_memory"]
