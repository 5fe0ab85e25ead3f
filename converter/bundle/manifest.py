"""What a bundle holds: its version, its file table, its manifest and the check of both.

A bundle is a folder of regular files and folders only: a symbolic link or any other kind
of entry anywhere inside it is refused, so no path of its file table can lead outside.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path

from ..errors import FommError
from ..formats import FORMATS
from ..io import file_sha256
from ..limits import BUNDLE_MAX_DEPTH, BUNDLE_MAX_FILES, MANIFEST_MAX_BYTES
from ..version import __version__

# Packages whose versions a manifest records (and a bundle's version depends on).
TOOLCHAIN = ("tensorflow", "torch", "onnx", "onnxruntime", "ai-edge-litert", "numpy",
             "flatbuffers")
CONVERTER = "fomm-convert"  # the toolchain entry of the converter itself
MANIFEST = "manifest.json"


class BundleError(FommError):
    """A bundle cannot be written, opened or run, or does not verify."""


def toolchain_packages(formats) -> tuple[str, ...]:
    """The packages a manifest of a bundle of these formats records: TOOLCHAIN, then those
    of its formats (formats.Format.toolchain)."""
    extra = (p for name in formats for p in FORMATS[name].toolchain)
    return TOOLCHAIN + tuple(dict.fromkeys(p for p in extra if p not in TOOLCHAIN))


def toolchain_versions(formats=()) -> dict:
    """The installed versions of toolchain_packages(formats) (None: not installed)."""
    versions = {CONVERTER: __version__}
    for name in toolchain_packages(formats):
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def bundle_version(spec_dict: dict, weights_sha256: dict, formats, synthetic: bool,
                   options: dict, toolchain: dict | None = None) -> str:
    """Converter version plus a digest of everything that determines the artifacts.

    toolchain: the versions a manifest records (default: the installed ones), so that a
    bundle's version can be recomputed from its manifest wherever it is opened."""
    toolchain = toolchain_versions(formats) if toolchain is None else toolchain
    converter = toolchain[CONVERTER]
    identity = json.dumps({"converter": converter, "toolchain": toolchain,
                           "spec": spec_dict, "weights": weights_sha256,
                           "formats": sorted(formats), "options": options},
                          sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{converter}-{'synthetic-' if synthetic else ''}{digest}"


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a file of at most `limit` bytes: a regular file, not a link (opened
    without following one, and without blocking on a FIFO). One-line BundleError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except OSError as exc:
        reason = "a symbolic link (a bundle holds none)" if Path(path).is_symlink() \
            else exc.strerror
        raise BundleError(f"{path}: {reason}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise BundleError(f"{path}: {info.st_size} bytes, more than a {what} can be "
                              f"({limit})")
        return f.read(limit + 1)


def read_json(path: Path, limit: int, what: str):
    """A JSON file of at most `limit` bytes (read_bounded). One-line BundleError otherwise."""
    data = read_bounded(path, limit, what)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not a {what}: binary data, not UTF-8 JSON (byte "
                          f"{exc.start})") from None
    except RecursionError:
        raise BundleError(f"{path}: not a {what}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None


def read_manifest(bundle: Path) -> dict:
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.exists() and not bundle.is_symlink():
        raise BundleError(f"{bundle}: no such directory")
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: not a directory (a bundle is one)")
    if not path.exists() and not path.is_symlink():
        raise BundleError(f"{bundle}: no {MANIFEST} (not a bundle)")
    data = read_json(path, MANIFEST_MAX_BYTES, "bundle manifest")
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a JSON object at the top level, got "
                          f"{json_type(data)}")
    return data


def json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages."""
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"),
                       (str, "a string"), (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def bundle_files(root: Path) -> dict[str, int]:
    """{bundle path: size} of every file below root, walked without following anything:
    a symbolic link, a FIFO, a device or a socket is refused, as is a tree deeper or larger
    than any bundle (limits.BUNDLE_MAX_DEPTH, BUNDLE_MAX_FILES)."""
    root = Path(root)
    files: dict[str, int] = {}

    def walk(folder: Path, prefix: str, depth: int):
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = f"{prefix}{entry.name}"
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    raise BundleError(f"{root / rel}: a symbolic link (a bundle holds none)")
                if stat.S_ISDIR(info.st_mode):
                    if depth >= BUNDLE_MAX_DEPTH:
                        raise BundleError(f"{root / rel}: deeper than a bundle is "
                                          f"({BUNDLE_MAX_DEPTH} levels)")
                    walk(Path(entry.path), f"{rel}/", depth + 1)
                elif stat.S_ISREG(info.st_mode):
                    files[rel] = info.st_size
                    if len(files) > BUNDLE_MAX_FILES:
                        raise BundleError(f"{root}: more than {BUNDLE_MAX_FILES} files (not "
                                          f"a bundle)")
                else:
                    raise BundleError(f"{root / rel}: not a regular file or a folder")

    walk(root, "", 1)
    return files


def file_table(root: Path, exclude=(MANIFEST,)) -> list[dict]:
    """Every file below root with its size and sha256, in a stable order."""
    root = Path(root)
    return [{"path": rel, "size": size, "sha256": file_sha256(root / rel)}
            for rel, size in sorted(bundle_files(root).items()) if rel not in exclude]


def unlisted_files(bundle: Path, manifest: dict) -> list[str]:
    """Files in the bundle that its (validated) manifest does not list."""
    listed = {row["path"] for row in manifest["files"]}
    return [rel for rel in bundle_files(bundle) if rel != MANIFEST and rel not in listed]


def check_files(bundle: Path, manifest: dict) -> list[str]:
    """Problems with the bundle's files against its (validated) manifest: empty when all
    match. Its paths stay inside the bundle and nothing in it is a link, so a message
    never tells anything about a file outside."""
    bundle = Path(bundle)
    present = bundle_files(bundle)
    problems = []
    for row in manifest["files"]:
        size = present.get(row["path"])
        if size is None:
            problems.append(f"{row['path']}: missing")
        elif size != row["size"]:
            problems.append(f"{row['path']}: size {size} != {row['size']}")
        elif file_sha256(bundle / row["path"]) != row["sha256"]:
            problems.append(f"{row['path']}: sha256 differs from the manifest")
    listed = {row["path"] for row in manifest["files"]}
    problems += [f"{rel}: not in the manifest" for rel in present
                 if rel != MANIFEST and rel not in listed]
    return problems
