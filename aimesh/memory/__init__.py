"""Vector memory of failures and lessons, so the Consumer learns from what went wrong before."""

from aimesh.memory.skill import Memory, MemoryMismatchError, MemorySkill, open_memory

__all__ = ["Memory", "MemoryMismatchError", "MemorySkill", "open_memory"]
