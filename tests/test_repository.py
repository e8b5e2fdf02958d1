"""The repository stands alone: what its code and docs point a reader to is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READ_BY_PEOPLE = ("aimesh", "tests", "scripts", "web", "bench", "docs", ".ci")
TOP_LEVEL = ("Makefile", "README.md", "Procfile", "setup.cfg", "pyproject.toml")


def _texts() -> dict[Path, str]:
    files = [ROOT / name for name in TOP_LEVEL]
    for folder in READ_BY_PEOPLE:
        files += [
            p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    return {p: p.read_text(errors="replace") for p in files if p.suffix not in {".png", ".pyc"}}


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"DESIGN" r"\.md|\.\./shared")  # split, or this file would match itself
    found = [str(p.relative_to(ROOT)) for p, text in _texts().items() if outside.search(text)]
    assert not found, f"pointing to documents a clone does not have: {found}"


def test_every_docs_page_named_exists():
    named = {m for text in _texts().values() for m in re.findall(r"docs/[\w.-]+\.md", text)}
    assert named, "no docs page is named anywhere"
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, missing
