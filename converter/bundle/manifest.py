"""What a bundle holds: its version, its file table, its manifest and the check of both."""
from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path

from ..version import __version__
from ..errors import FommError
from ..io import file_sha256

# Packages whose versions a manifest records (and a bundle's version depends on).
TOOLCHAIN = ("tensorflow", "torch", "onnx", "onnxruntime", "ai-edge-litert", "numpy",
             "flatbuffers")
MANIFEST = "manifest.json"


class BundleError(FommError):
    """A bundle cannot be written, opened or run, or does not verify."""


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


def file_table(root: Path, exclude=(MANIFEST,)) -> list[dict]:
    """Every file below root with its size and sha256, in a stable order."""
    rows = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in exclude:
            rows.append({"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)})
    return rows


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle}: no {MANIFEST} (not a bundle)")
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
