"""Models from packages: parts are found without importing, joined once, and refused when altered.

Small stand-in packages on `sys.path` play the chunk wheels, so every refusal is shown on real
files in a few milliseconds; the real default model is checked by the pull tests.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aimesh.llm.catalog import CATALOG, ModelSpec, Part, UnknownModel, lookup
from aimesh.llm.model_store import ModelError, missing_parts, model_file

CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 700, b"tail"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def packages(tmp_path: Path) -> Iterator[Path]:
    """Three stand-in part packages (`tinytest_partN/data/partNN.bin`) importable from tmp."""
    site = tmp_path / "site"
    for n, chunk in enumerate(CHUNKS, start=1):
        data = site / f"tinytest_part{n}" / "data"
        data.mkdir(parents=True)
        (data / f"part{n:02d}.bin").write_bytes(chunk)
        (data.parent / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
    importlib.invalidate_caches()


def _spec(whole: str | None = None) -> ModelSpec:
    parts = tuple(
        Part(f"tinytest-part{n}", "1.0", "", f"data/part{n:02d}.bin", len(chunk), _sha(chunk))
        for n, chunk in enumerate(CHUNKS, start=1)
    )
    return ModelSpec(
        name="tiny:test",
        parts=parts,
        size=sum(len(c) for c in CHUNKS),
        sha256=whole or _sha(b"".join(CHUNKS)),
        family="test",
        parameter_size="1K",
        quantization="none",
    )


def test_parts_are_joined_in_order_and_checked(packages: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    path = model_file(_spec(), models)
    assert path == models / "tiny-test.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert sorted(p.name for p in models.iterdir()) == [
        "tiny-test.gguf",
        "tiny-test.gguf.lock",
        "tiny-test.gguf.verified",
    ]


def test_callers_at_once_join_the_model_once_and_whole(packages: Path, tmp_path: Path) -> None:
    """A pull and a first chat (threads), or two processes, may ask for one model at once."""
    models = tmp_path / "models"
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: model_file(_spec(), models), range(4)))
    assert len(set(paths)) == 1 and paths[0].read_bytes() == b"".join(CHUNKS)
    assert not list(models.glob("*.partial"))


def test_a_models_dir_that_cannot_be_written_is_a_clear_error(
    packages: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    with pytest.raises(ModelError, match=r"tiny:test: cannot prepare it in .*file-not-dir"):
        model_file(_spec(), blocker / "models")


def test_a_joined_file_is_not_hashed_again_unless_it_changed(
    packages: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    path = model_file(_spec(), models)
    joined_at = path.stat().st_mtime_ns
    assert model_file(_spec(), models).stat().st_mtime_ns == joined_at, "kept as it was"
    path.write_bytes(b"tampered" + path.read_bytes()[8:])
    again = model_file(_spec(), models)
    assert again.read_bytes() == b"".join(CHUNKS), "an altered file is joined again"


def test_a_missing_part_names_its_package(packages: Path, tmp_path: Path) -> None:
    (packages / "tinytest_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelError, match=r"tinytest-part2.*no data/part02.bin"):
        model_file(_spec(), tmp_path / "models")
    assert not (tmp_path / "models" / "tiny-test.gguf").exists()


def test_an_uninstalled_part_names_its_package_and_the_pull(tmp_path: Path) -> None:
    spec = _spec()
    assert missing_parts(spec) == list(spec.parts)
    with pytest.raises(ModelError) as info:
        model_file(spec, tmp_path / "models")
    assert "tinytest-part1==1.0, tinytest-part2==1.0, tinytest-part3==1.0" in str(info.value)
    assert "aimesh pull tiny:test" in str(info.value)


def test_a_corrupted_part_is_refused_with_its_package(packages: Path, tmp_path: Path) -> None:
    part = packages / "tinytest_part2" / "data" / "part02.bin"
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF  # same size, one byte flipped
    part.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"package tinytest-part2==1\.0: .* has sha256 .* pinned"):
        model_file(_spec(), tmp_path / "models")
    models = tmp_path / "models"
    assert not any(p.suffix == ".gguf" for p in models.iterdir()), "no file left under any name"


def test_a_part_of_the_wrong_size_is_refused_before_reading_it(
    packages: Path, tmp_path: Path
) -> None:
    (packages / "tinytest_part3" / "data" / "part03.bin").write_bytes(b"tail, and more")
    with pytest.raises(ModelError, match=r"package tinytest-part3==1\.0: .* 14 bytes, not 4"):
        model_file(_spec(), tmp_path / "models")


def test_a_wrong_pinned_hash_of_the_whole_is_refused(packages: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ModelError, match=r"tiny:test: the joined file has sha256 .* not the pinned"
    ):
        model_file(_spec(whole="0" * 64), tmp_path / "models")
    assert not list((tmp_path / "models").glob("*.gguf"))


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(
        UnknownModel, match=r"qwen2\.5-coder:0\.5b, qwen2\.5-coder:1\.5b, smollm2:135m"
    ):
        lookup("llama9:1t")


def test_the_catalog_pins_add_up() -> None:
    for spec in CATALOG.values():
        assert sum(part.size for part in spec.parts) == spec.size, spec.name
        assert all(len(part.sha256) == 64 for part in spec.parts), spec.name
        assert len({part.package for part in spec.parts}) == len(spec.parts), spec.name
