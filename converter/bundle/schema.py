"""The manifest as an input: checked against its schema (types, required fields, no unknown
ones), its names plain, its paths inside the bundle; then its facts against each other:
the version is the digest of what it records, the licence that of its weights, the
dataset its spec's name, the spec as build writes it, every format's files listed. Its
spec's model family (families.py) says which networks its weights are hashed by, which
files each format holds and which licence it carries.

Each refusal is one BundleError line naming manifest.json and the field.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import shown
from ..families import UnknownFamily, family_of, family_of_record
from ..formats import FORMATS
from ..io import json_text
from ..licence import licence
from ..limits import BUNDLE_MAX_DEPTH, BUNDLE_MAX_FILES, VERSION_MAX_CHARS
from ..paths import BUNDLE_PATH_PART, is_file_name, is_plain_name
from .manifest import (CONVERTER, MANIFEST, BundleError, bundle_version, json_type,
                       toolchain_packages)

FIELDS = ("checkpoint", "dataset", "files", "formats", "licence", "parity", "quality", "spec",
          "synthetic", "toolchain", "version")
CHECKPOINT_FIELDS = ("file", "sha256", "weights_sha256")
FILE_FIELDS = ("path", "size", "sha256")
PARITY_FIELDS = ("checks", "max_abs_by_stage", "passed", "profile")
PARITY_REPORT = "parity/report.json"
# build measures int8 against float32 TFLite when it makes both (pipeline.build).
QUALITY = ("tflite-int8", {"tflite", "tflite-int8"})
HEX64 = re.compile(r"^[0-9a-f]{64}$")
VERSION = re.compile(rf"^[\x21-\x7e]{{1,{VERSION_MAX_CHARS}}}$")  # printable ASCII


class _Fields:
    def __init__(self, bundle):
        self.where = f"{Path(bundle) / MANIFEST}"

    def fail(self, field: str, problem: str):
        raise BundleError(f"{self.where}: {field + ': ' if field else ''}{problem}")

    def of(self, field, value, kind, name):
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self.fail(field, f"expected {name}, got {json_type(value)}")
        return value

    def object(self, field, value, keys) -> dict:
        self.of(field, value, dict, "an object")
        unknown = [k for k in value if k not in keys]
        if unknown:
            self.fail(field, f"unknown field {shown(unknown[0])}")
        missing = [k for k in keys if k not in value]
        if missing:
            self.fail(f"{field}.{missing[0]}" if field else missing[0], "missing")
        return value

    def matching(self, field, value, pattern, name):
        self.of(field, value, str, "a string")
        if not pattern.match(value):
            self.fail(field, f"{shown(value)} is not {name}")
        return value

    def plain(self, field, value):
        self.of(field, value, str, "a string")
        if not is_plain_name(value):
            self.fail(field, f"{shown(value)} is not a plain name (letters, digits, '_', '.', "
                             f"'-'; no path)")
        return value

    def count(self, field, value):
        if self.of(field, value, int, "an integer") < 0:
            self.fail(field, f"{value} is negative")
        return value

    def number(self, field, value):
        self.of(field, value, (int, float), "a number")
        if not math.isfinite(value):
            self.fail(field, f"{value} is not finite")
        return value


def path_problem(path: str) -> str | None:
    """Why a file-table path could name something outside the bundle, or is not one of
    build's names (None when it is fine)."""
    parts = path.split("/")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return "is absolute (bundle paths are relative to the bundle)"
    if ".." in parts:
        return "leaves the bundle ('..')"
    if len(parts) > BUNDLE_MAX_DEPTH:
        return f"is deeper than a bundle ({BUNDLE_MAX_DEPTH} levels)"
    bad = next((p for p in parts if not BUNDLE_PATH_PART.match(p)), None)
    if bad is not None:
        return f"is not a bundle path (its part {shown(bad)})"
    if path == MANIFEST:
        return "is the manifest itself"
    return None


def validate_manifest(bundle, manifest: dict) -> None:
    """The manifest's schema: every field there, of its type, nothing unknown."""
    f = _Fields(bundle)
    f.object("", manifest, FIELDS)
    f.matching("version", manifest["version"], VERSION, "a version")
    f.plain("dataset", manifest["dataset"])
    f.of("synthetic", manifest["synthetic"], bool, "a boolean")
    spec = f.of("spec", manifest["spec"], dict, "an object")
    try:
        family = family_of_record(spec)
    except UnknownFamily as exc:
        f.fail("spec.family", str(exc))
    formats = _formats(f, manifest["formats"])
    checkpoint = f.object("checkpoint", manifest["checkpoint"], CHECKPOINT_FIELDS)
    f.of("checkpoint.file", checkpoint["file"], str, "a string")
    if not is_file_name(checkpoint["file"]):
        f.fail("checkpoint.file", f"{shown(checkpoint['file'])} is not a plain file name")
    f.matching("checkpoint.sha256", checkpoint["sha256"], HEX64, "a sha256 (64 hex digits)")
    weights = f.object("checkpoint.weights_sha256", checkpoint["weights_sha256"],
                       family.networks)
    for net in family.networks:
        f.matching(f"checkpoint.weights_sha256.{net}", weights[net], HEX64,
                   "a sha256 (64 hex digits)")
    toolchain = f.object("toolchain", manifest["toolchain"],
                         (CONVERTER, *toolchain_packages(formats)))
    for name, value in toolchain.items():
        if value is not None or name == CONVERTER:
            f.matching(f"toolchain.{name}", value, VERSION, "a version")
    f.of("licence", manifest["licence"], dict, "an object")
    _parity(f, manifest["parity"], formats)
    _quality(f, manifest["quality"], formats)
    if "name" not in spec:
        f.fail("spec.name", "missing")
    f.plain("spec.name", spec["name"])
    _files(f, manifest["files"], formats, family)


def _formats(f: _Fields, value) -> list:
    f.of("formats", value, list, "a list")
    if not value:
        f.fail("formats", "empty (a bundle holds at least one format)")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in FORMATS:
            f.fail(f"formats[{i}]", f"{shown(name)} is not a format (known: "
                                    f"{', '.join(FORMATS)})")
    if len(set(value)) != len(value):
        f.fail("formats", "lists a format twice")
    return value


def _parity(f: _Fields, value, formats):
    f.of("parity", value, dict, "an object")
    expected = {"layers", *formats}
    if set(value) != expected:
        f.fail("parity", f"holds {shown(sorted(value))}, expected the layers and each format "
                         f"({', '.join(sorted(expected))})")
    for name in sorted(expected):
        row = f.object(f"parity.{name}", value[name], PARITY_FIELDS)
        f.matching(f"parity.{name}.profile", row["profile"], VERSION, "a profile name")
        if not f.of(f"parity.{name}.passed", row["passed"], bool, "a boolean"):
            f.fail(f"parity.{name}.passed", "false (build writes a bundle only when every "
                                            "parity check passes)")
        f.count(f"parity.{name}.checks", row["checks"])
        stages = f.of(f"parity.{name}.max_abs_by_stage", row["max_abs_by_stage"], dict,
                      "an object")
        for stage, worst in stages.items():
            f.number(f"parity.{name}.max_abs_by_stage.{shown(stage)}", worst)


def _quality(f: _Fields, value, formats):
    f.of("quality", value, dict, "an object")
    name, needs = QUALITY
    expected = {name} if needs <= set(formats) else set()
    if set(value) != expected:
        f.fail("quality", f"holds {shown(sorted(value))}, expected "
                          f"{', '.join(sorted(expected)) or 'nothing'} for these formats")
    for key in expected:
        for field, item in f.of(f"quality.{key}", value[key], dict, "an object").items():
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                f.fail(f"quality.{key}.{shown(field)}",
                       f"expected a string or a number, got {json_type(item)}")


def _files(f: _Fields, rows, formats, family):
    f.of("files", rows, list, "a list")
    if len(rows) > BUNDLE_MAX_FILES:
        f.fail("files", f"{len(rows)} entries, more than a bundle holds ({BUNDLE_MAX_FILES})")
    seen = set()
    for i, row in enumerate(rows):
        where = f"files[{i}]"
        f.object(where, row, FILE_FIELDS)
        path = f.of(f"{where}.path", row["path"], str, "a string")
        problem = path_problem(path)
        if problem:
            f.fail(f"{where}.path", f"{shown(path)} {problem}")
        if path in seen:
            f.fail(f"{where}.path", f"{shown(path)} is listed twice")
        seen.add(path)
        f.count(f"{where}.size", row["size"])
        f.matching(f"{where}.sha256", row["sha256"], HEX64, "a sha256 (64 hex digits)")
    needed = [(PARITY_REPORT, "the parity report")] + [
        (f"{path}/saved_model.pb" if FORMATS[name].kind == "savedmodel" else path,
         f"a file of the {name} format") for name in formats
        for path in FORMATS[name].files(family)]
    for path, what in needed:
        if path not in seen:
            f.fail("files", f"does not list {path} ({what})")


def check_identity(bundle, manifest: dict, spec) -> None:
    """The validated manifest's facts against each other and against its spec (resolved
    from it): what `animate` uses (spec, normalisation, frame shape) is covered by the
    version, recomputed from the recorded inputs and toolchain."""
    f = _Fields(bundle)
    if json_text(manifest["spec"]) != json_text(spec.to_dict()):
        f.fail("spec", "not as build writes it (fields differ from their resolved values)")
    if manifest["dataset"] != spec.name:
        f.fail("dataset", f"{shown(manifest['dataset'])} is not the spec's name "
                          f"{shown(spec.name)}")
    synthetic = manifest["synthetic"]
    expected = bundle_version(manifest["spec"], manifest["checkpoint"]["weights_sha256"],
                              manifest["formats"], synthetic, {}, manifest["toolchain"])
    if manifest["version"] != expected:
        f.fail("version", f"{shown(manifest['version'])} is not the digest of what the "
                          f"manifest records ({expected}): the manifest was edited")
    family = family_of(spec)
    if manifest["licence"] != licence(family, synthetic):
        f.fail("licence", "not the licence of " + (
            "synthetic weights" if synthetic
            else f"converted {family.title} weights ({family.licence.spdx})"))
