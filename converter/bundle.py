"""The versioned release bundle: what is in it, how it is named, and how it is written.

A bundle is written to a temporary directory beside its final place and renamed into
place in one step, so an interrupted build leaves nothing that looks like a bundle. The
version is derived from the inputs, and every file (the manifest included) is the same
byte for byte when the inputs are.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path

from . import __version__

TOOLCHAIN = ("tensorflow", "torch", "onnx", "onnxruntime", "ai-edge-litert", "numpy",
             "flatbuffers")
FORMATS = ("savedmodel", "tflite", "tflite-fp16", "tflite-int8", "onnx")
DEFAULT_FORMATS = ("savedmodel", "tflite", "tflite-fp16", "onnx")

class BundleError(RuntimeError):
    """A bundle cannot be written or does not verify."""


def toolchain_versions() -> dict:
    versions = {"fomm-convert": __version__}
    for name in TOOLCHAIN:
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def bundle_version(spec_dict: dict, weights_sha256: dict, formats, synthetic: bool,
                   options: dict) -> str:
    """Converter version plus a digest of everything that determines the artifacts."""
    identity = json.dumps({"converter": __version__, "toolchain": toolchain_versions(),
                           "spec": spec_dict, "weights": weights_sha256,
                           "formats": sorted(formats), "options": options},
                          sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{__version__}-{'synthetic-' if synthetic else ''}{digest}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_table(root: Path, exclude=("manifest.json",)) -> list[dict]:
    """Every file below root with its size and sha256, in a stable order."""
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in exclude:
            rows.append({"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)})
    return rows


def write_atomic(path: Path, data: bytes) -> Path:
    """Write through a temporary file in the same directory and rename: never a half file
    (mode 0644, like the archive's members)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: Path, data: dict):
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


@contextmanager
def staging(final: Path, force: bool):
    """A temporary directory beside `final`, renamed to it on success, removed on failure.

    Also removes staging directories that a killed build left behind.
    """
    final = Path(final)
    if final.exists() and not force:
        raise BundleError(f"{final} exists; pass --force to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.staging-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.staging-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".{final.name}.replaced-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def write_archive(bundle: Path, archive: Path):
    """A reproducible .tar.gz of the bundle: sorted names, zeroed times and owners."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [bundle, *sorted(bundle.rglob("*"))]:
            info = tar.gettarinfo(str(path), arcname=f"{bundle.name}/{path.relative_to(bundle)}"
                                  if path != bundle else bundle.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    tmp = archive.with_name(f".{archive.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                   mtime=0) as gz:
            gz.write(buffer.getvalue())
        os.replace(tmp, archive)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / "manifest.json"
    if not path.is_file():
        raise BundleError(f"{bundle}: no manifest.json (not a bundle)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None


def check_files(bundle: Path, manifest: dict) -> list[str]:
    """Problems with the bundle's files against its manifest (empty when all match)."""
    bundle = Path(bundle)
    problems = []
    listed = {row["path"] for row in manifest.get("files", [])}
    for row in manifest.get("files", []):
        path = bundle / row["path"]
        if not path.is_file():
            problems.append(f"{row['path']}: missing")
        elif path.stat().st_size != row["size"]:
            problems.append(f"{row['path']}: size {path.stat().st_size} != {row['size']}")
        elif file_sha256(path) != row["sha256"]:
            problems.append(f"{row['path']}: sha256 differs from the manifest")
    for row in file_table(bundle):
        if row["path"] not in listed:
            problems.append(f"{row['path']}: not in the manifest")
    return problems
