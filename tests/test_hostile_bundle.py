"""A bundle as untrusted input, and build's safety (issue 12).

One tiny bundle (tflite, onnx; synthetic weights) is built for the module; each test
tampers a copy. Every refusal is asserted as its exact one line; verify and animate write
nothing but animate's output; build --force replaces only one of our bundles; a second
build into the same place fails at once; a killed build leaves the old state or the new
one, never half of either, and nothing that the next build does not remove.
"""
from __future__ import annotations

import fcntl
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from peak_memory import measured_run

from fomm_convert.bundle import BundleError
from fomm_convert.bundle.manifest import bundle_version
from fomm_convert.bundle.write import clean_stale
from fomm_convert.cli import cli
from fomm_convert.io import file_sha256
from fomm_convert.limits import BUNDLE_MAX_FILES, MANIFEST_MAX_BYTES

from conftest import FIXTURES, ROOT, as_a_user, config_path, demo_media, require_module

TINY = config_path("tiny")
CKPT = str(FIXTURES / "tiny-seed7.pth.tar")
# Peak RSS of a refused hostile bundle, in a process of its own: the lite CLI is ~100 MB;
# a 20000x20000 frame would need gigabytes before anything noticed it.
MAX_RSS_MB = 400


def python(*args, cwd, env=None, timeout=300, **kwargs):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, **kwargs)


def command(*args, cwd, env=None, timeout=300):
    return python("-m", "fomm_convert.cli", *args, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def built(synthetic_bundle):
    """The session's tiny synthetic bundle; its checkpoint stays in the build's working
    folder. Tests copy it before they change anything."""
    return synthetic_bundle


def copy(built, dest: Path) -> Path:
    shutil.copytree(built.bundle, dest, symlinks=True)
    return dest


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def write_manifest(bundle: Path, manifest):
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    (bundle / "manifest.json").write_bytes(data)


def resign(manifest: dict) -> dict:
    """What an editor who knows the format does: recompute the version from the edits."""
    manifest["version"] = bundle_version(manifest["spec"],
                                         manifest["checkpoint"]["weights_sha256"],
                                         manifest["formats"], manifest["synthetic"], {},
                                         manifest["toolchain"])
    return manifest


def refresh(bundle: Path, manifest: dict, rel: str):
    """The file table's row of `rel` made to match the file (a consistent swap)."""
    row = next(r for r in manifest["files"] if r["path"] == rel)
    row["size"], row["sha256"] = (bundle / rel).stat().st_size, file_sha256(bundle / rel)


# onnxruntime keeps a session file in TMPDIR, made and removed as it is imported: its own.
LIBRARY_FILES = {".ses"}


def snapshot(*folders, folder_times: bool = True) -> dict:
    """Every entry below the folders, with its kind, size and mtime (folders' too, unless
    folder_times is False: a lock file made and removed beside a target changes them)."""
    out = {}
    for folder in folders:
        for path in [Path(folder), *Path(folder).rglob("*")]:
            if path.name in LIBRARY_FILES:
                continue
            info = path.lstat()
            kind = stat.S_IFMT(info.st_mode)
            out[str(path)] = (kind, None, None) if kind == stat.S_IFDIR and not folder_times \
                else (kind, info.st_size, info.st_mtime_ns)
    return out


def refusal(result) -> str:
    """The one line of a refused CLI run (in-process CliRunner or a subprocess)."""
    if isinstance(result, subprocess.CompletedProcess):
        code, text = result.returncode, result.stderr
    else:
        code, text = result.exit_code, result.output
    lines = [line for line in text.splitlines() if line.strip()]
    assert code == 1 and lines and lines[-1].startswith("Error: "), text
    assert "Traceback" not in text, text
    return lines[-1][len("Error: "):]


def verify_refuses(bundle: Path, cwd: Path, monkeypatch) -> str:
    """verify in-process from an empty working folder: its one line; nothing written in
    the working folder, the bundle or beside it."""
    monkeypatch.chdir(cwd)
    before = snapshot(cwd, bundle.parent)
    line = refusal(CliRunner().invoke(cli, ["verify", str(bundle)]))
    assert snapshot(cwd, bundle.parent) == before
    return line


# ------------------------------------------------------------------ manifest tampering
def _files_as_dict(m):
    m["files"] = {row["path"]: row for row in m["files"]}


def _extra_files(m):
    m["files"] += [{"path": f"x/{i}", "size": 0, "sha256": "0" * 64}
                   for i in range(BUNDLE_MAX_FILES)]


def _with_savedmodel(m):
    m["formats"].insert(0, "savedmodel")
    m["parity"]["savedmodel"] = m["parity"]["tflite"]
    resign(m)


def _flip_relative(m):
    m["spec"]["normalization"]["relative"] = not m["spec"]["normalization"]["relative"]


def _frame(m, side):
    m["spec"]["frame_shape"] = [side, side, 3]


# (id, edit of the parsed manifest or the raw bytes to write, the refusal's regex)
MANIFEST_CASES = [
    ("binary", b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00", r"manifest\.json: not a bundle manifest: "
                                                       r"binary data, not UTF-8 JSON"),
    ("deeply-nested", b"[" * 100000 + b"]" * 100000, r"manifest\.json: not a bundle manifest: "
                                                     r"JSON nested too deeply"),
    ("a-list", b"[1, 2, 3]", r"manifest\.json: expected a JSON object at the top level, "
                             r"got a list"),
    ("truncated", lambda m: json.dumps(m)[:-20].encode(), r"manifest\.json: not valid JSON"),
    ("too-large", b" " * (MANIFEST_MAX_BYTES + 1) + b"{}",
     rf"manifest\.json: {MANIFEST_MAX_BYTES + 3} bytes, more than a bundle manifest can be"),
    ("files-as-dict", _files_as_dict, r"manifest\.json: files: expected a list, got an object"),
    ("row-without-sha256", lambda m: m["files"][0].pop("sha256"),
     r"manifest\.json: files\[0\]\.sha256: missing$"),
    ("integer-path", lambda m: m["files"][0].update(path=7),
     r"manifest\.json: files\[0\]\.path: expected a string, got an integer$"),
    ("string-size", lambda m: m["files"][1].update(size="12"),
     r"files\[1\]\.size: expected an integer, got a string$"),
    ("negative-size", lambda m: m["files"][1].update(size=-1), r"files\[1\]\.size: -1 is "
                                                               r"negative$"),
    ("bad-sha256", lambda m: m["files"][2].update(sha256="abc"),
     r"files\[2\]\.sha256: 'abc' is not a sha256"),
    ("unknown-field", lambda m: m.update(extra=1), r"manifest\.json: unknown field 'extra'$"),
    ("missing-field", lambda m: m.pop("licence"), r"manifest\.json: licence: missing$"),
    ("dotdot-path", lambda m: m["files"][0].update(path="../outside.tflite"),
     r"files\[0\]\.path: '\.\./outside\.tflite' leaves the bundle"),
    ("inner-dotdot", lambda m: m["files"][0].update(path="tflite/../../../x"),
     r"files\[0\]\.path: 'tflite/\.\./\.\./\.\./x' leaves the bundle"),
    ("absolute-path", lambda m: m["files"].append({"path": "/etc/shadow", "size": 1,
                                                   "sha256": "0" * 64}),
     r"files\[\d+\]\.path: '/etc/shadow' is absolute"),
    ("duplicate-path", lambda m: m["files"].append(dict(m["files"][0])),
     r"files\[\d+\]\.path: '.*' is listed twice"),
    ("too-many-files", _extra_files, rf"files: {BUNDLE_MAX_FILES + 14} entries, more than a "
                                     rf"bundle holds \({BUNDLE_MAX_FILES}\)"),
    ("unknown-format", lambda m: m["formats"].append("coreml"),
     r"formats\[2\]: 'coreml' is not a format"),
    ("format-without-files", _with_savedmodel,
     r"files: does not list savedmodel/kp_detector/saved_model\.pb"),
    ("parity-failed", lambda m: m["parity"]["tflite"].update(passed=False),
     r"parity\.tflite\.passed: false"),
    ("checkpoint-file-path", lambda m: m["checkpoint"].update(file="../../etc/x.pth.tar"),
     r"checkpoint\.file: '\.\./\.\./etc/x\.pth\.tar' is not a plain file name"),
    ("dataset", lambda m: resign(m.update(dataset="other") or m),
     r"dataset: 'other' is not the spec's name 'tiny'"),
    ("dataset-path", lambda m: m.update(dataset="../x"), r"dataset: '\.\./x' is not a plain"),
    ("normalization", _flip_relative, r"version: '.*' is not the digest of what the manifest "
                                      r"records"),
    ("normalization-resigned", lambda m: resign(_flip_relative(m) or m),
     r"tflite/kp_detector\.tflite: its metadata gives bundle_version"),
    ("frame-shape", lambda m: _frame(m, 128), r"version: .* is not the digest"),
    ("frame-shape-resigned", lambda m: resign(_frame(m, 128) or m),
     r"tflite/kp_detector\.tflite: its metadata gives bundle_version"),
    ("synthetic-flag", lambda m: m.update(synthetic=False), r"version: .* is not the digest"),
    ("synthetic-flag-resigned", lambda m: resign(m.update(synthetic=False) or m),
     r"licence: not the licence of converted FOMM weights"),
    ("licence", lambda m: m["licence"].update(license="MIT"),
     r"licence: not the licence of synthetic weights"),
    ("version", lambda m: m.update(version="0.1.0-synthetic-0123456789"),
     r"version: '0\.1\.0-synthetic-0123456789' is not the digest"),
    ("toolchain", lambda m: m["toolchain"].update(numpy="1.0"), r"version: .* is not the "
                                                                r"digest"),
    ("toolchain-type", lambda m: m["toolchain"].update(numpy=5),
     r"toolchain\.numpy: expected a string, got an integer"),
    # A package only an ExecuTorch bundle records (bundle.manifest.toolchain_packages).
    ("toolchain-executorch", lambda m: resign(m["toolchain"].update(executorch="1.5.1") or m),
     r"manifest\.json: toolchain: unknown field 'executorch'$"),
    ("spec-extra", lambda m: resign(m["spec"].update(description="x") or m),
     r"spec: not as build writes it"),
    ("quality", lambda m: m.update(quality={"tflite-int8": {}}), r"quality: holds"),
    ("family-unknown", lambda m: m["spec"].update(family="coreml"),
     r"manifest\.json: spec\.family: unknown model family 'coreml' \(known: fomm, tpsmm\)$"),
    ("family-other", lambda m: m["spec"].update(family="tpsmm"),
     r"manifest\.json: checkpoint\.weights_sha256: unknown field 'generator'$"),
]


@pytest.mark.parametrize("edit, expected", [c[1:] for c in MANIFEST_CASES],
                         ids=[c[0] for c in MANIFEST_CASES])
def test_tampered_manifest_is_refused(built, tmp_path, monkeypatch, edit, expected):
    bundle = copy(built, tmp_path / "b")
    manifest = manifest_of(bundle)
    if callable(edit):
        result = edit(manifest)
        data = result if isinstance(result, bytes) else manifest
    else:
        data = edit
    write_manifest(bundle, data)
    (tmp_path / "cwd").mkdir()
    assert re.search(expected, verify_refuses(bundle, tmp_path / "cwd",
                                                             monkeypatch))


@pytest.mark.parametrize("name", ["{target}/newdir/ABS", "../../../{leaf}"])
def test_spec_name_never_becomes_a_path(built, tmp_path, monkeypatch, name):
    """A (re-signed) spec name that is a path: refused, and nothing appears there."""
    bundle = copy(built, tmp_path / "deep" / "er" / "b")
    target = tmp_path / "target"
    name = name.format(target=target, leaf=f"escaped-{os.getpid()}")
    manifest = manifest_of(bundle)
    manifest["spec"]["name"] = name
    manifest["checkpoint"]["file"] = f"{Path(name).name}-synthetic-seed7.pth.tar"
    write_manifest(bundle, resign(manifest))
    (tmp_path / "cwd").mkdir()
    line = verify_refuses(bundle, tmp_path / "cwd", monkeypatch)
    assert "manifest.json: spec.name: " in line and "is not a plain name" in line
    assert not target.exists()
    assert not list(tmp_path.rglob("escaped-*")) and not list(tmp_path.parent.glob("escaped-*"))


def test_parity_summary_must_be_the_report(built, tmp_path, monkeypatch):
    bundle = copy(built, tmp_path / "b")
    manifest = manifest_of(bundle)
    manifest["parity"]["tflite"]["max_abs_by_stage"]["image"] = 0.0
    write_manifest(bundle, manifest)
    (tmp_path / "cwd").mkdir()
    assert verify_refuses(bundle, tmp_path / "cwd", monkeypatch) == (
        f"{bundle}/manifest.json: parity.tflite: differs from its report in "
        f"parity/report.json")


def test_huge_frame_shape_is_refused_in_bounded_memory(built, tmp_path):
    bundle = copy(built, tmp_path / "b")
    manifest = manifest_of(bundle)
    _frame(manifest, 20000)
    write_manifest(bundle, resign(manifest))
    result, rss_mb = measured_run(sys.executable, "-m", "fomm_convert.cli", "verify", bundle,
                                  cwd=tmp_path)
    assert rss_mb < MAX_RSS_MB, rss_mb
    assert re.search(r"frame_shape|bundle_version", result.stderr)
    assert "Traceback" not in result.stderr and result.returncode == 1


# ------------------------------------------------------------------ artifacts and files
def _swap_tflite(bundle, m):
    shutil.copy(bundle / "tflite" / "kp_detector.tflite", bundle / "tflite" / "generator.tflite")
    refresh(bundle, m, "tflite/generator.tflite")


def _junk(rel):
    def edit(bundle, m):
        (bundle / rel).write_bytes(bytes(random.Random(0).randrange(256) for _ in range(4096)))
        refresh(bundle, m, rel)
    return edit


def _external(value_of):
    def edit(bundle, m):
        onnx = require_module("onnx", "convert")
        path = bundle / "onnx" / "generator.onnx"
        model = onnx.load(str(path), load_external_data=False)
        tensor = next(t for t in model.graph.initializer if t.data_location == 1)
        for entry in tensor.external_data:
            entry.value = value_of.get(entry.key, entry.value)
        path.write_bytes(model.SerializeToString())
        refresh(bundle, m, "onnx/generator.onnx")
    return edit


def _link_file(bundle, m):
    outside = bundle.parent / "outside.tflite"
    shutil.copy(bundle / "tflite" / "generator.tflite", outside)
    (bundle / "tflite" / "generator.tflite").unlink()
    (bundle / "tflite" / "generator.tflite").symlink_to(outside)


def _link_folder(bundle, m):
    shutil.move(bundle / "tflite", bundle.parent / "elsewhere")
    (bundle / "tflite").symlink_to(bundle.parent / "elsewhere")


def _link_manifest(bundle, m):
    (bundle.parent / "m.json").write_text(json.dumps(m))
    (bundle / "manifest.json").unlink()
    (bundle / "manifest.json").symlink_to(bundle.parent / "m.json")


# (id, edit(bundle, manifest) -> the manifest is written back after, refusal regex)
FILE_CASES = [
    ("swapped-tflite", _swap_tflite, r"tflite/generator\.tflite: its metadata gives model "
                                     r"'kp_detector', the bundle's is 'generator'"),
    ("junk-tflite", _junk("tflite/generator.tflite"),
     r"tflite/generator\.tflite: not a readable TFLite model"),
    ("junk-onnx", _junk("onnx/kp_detector.onnx"),
     r"onnx/kp_detector\.onnx: (not a readable ONNX model|no fomm_convert\.json metadata)"),
    ("external-data-outside", _external({"location": "../../outside.bin"}),
     r"onnx/generator\.onnx: tensor .*: its external data must be generator\.weights "
     r"beside it, not '\.\./\.\./outside\.bin'"),
    ("external-data-past-the-end", _external({"offset": "99999999"}),
     r"onnx/generator\.onnx: tensor .*: its external data \(99999999\+\d+ bytes\) lies "
     r"outside generator\.weights"),
    ("symlink-to-a-file-outside", _link_file,
     r"tflite/generator\.tflite: a symbolic link \(a bundle holds none\)"),
    ("symlink-to-a-folder-outside", _link_folder, r"/b/tflite: a symbolic link"),
    ("unlisted-symlink", lambda b, m: (b / "extra").symlink_to("/etc/passwd"),
     r"/b/extra: a symbolic link"),
    ("manifest-symlink", _link_manifest, r"/b/manifest\.json: a symbolic link"),
    ("fifo", lambda b, m: os.mkfifo(b / "parity" / "pipe"),
     r"/b/parity/pipe: not a regular file or a folder"),
    ("fifo-manifest", lambda b, m: ((b / "manifest.json").unlink(),
                                    os.mkfifo(b / "manifest.json")),
     r"/b/manifest\.json: not a regular file"),
    ("missing-file", lambda b, m: (b / "tflite" / "generator.tflite").unlink(),
     r"does not verify \(1 file problem\(s\): tflite/generator\.tflite: missing\)"),
    ("unlisted-file", lambda b, m: (b / "notes.txt").write_text("x"),
     r"notes\.txt: not in the manifest"),
]


@pytest.mark.parametrize("edit, expected", [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_tampered_files_are_refused(built, tmp_path, monkeypatch, edit, expected):
    bundle = copy(built, tmp_path / "b")
    manifest = manifest_of(bundle)
    edit(bundle, manifest)
    if not (bundle / "manifest.json").is_symlink() and (bundle / "manifest.json").is_file():
        write_manifest(bundle, manifest)
    (tmp_path / "cwd").mkdir()
    assert re.search(expected, verify_refuses(bundle, tmp_path / "cwd",
                                                             monkeypatch))


def test_a_refusal_tells_nothing_of_files_outside(built, tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 12345)
    bundle = copy(built, tmp_path / "b")
    manifest = manifest_of(bundle)
    manifest["files"].append({"path": str(secret), "size": 1, "sha256": "0" * 64})
    write_manifest(bundle, manifest)
    (tmp_path / "cwd").mkdir()
    line = verify_refuses(bundle, tmp_path / "cwd", monkeypatch)
    assert "is absolute" in line and "12345" not in line


def test_onnxruntime_refusal_is_one_line(built, tmp_path):
    """Past the bundle's own checks (open without them), the runtime's refusal of external
    data outside the folder is one line too."""
    from fomm_convert.bundle.open import open_backend, open_bundle
    bundle = copy(built, tmp_path / "b")
    _external({"location": "../../outside.bin"})(bundle, manifest_of(bundle))
    with pytest.raises(BundleError, match=r"generator\.onnx: onnxruntime cannot load it "
                                          r"\(.*External data path") as caught:
        open_backend("onnx", open_bundle(bundle, check=False).spec, bundle=bundle)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------ nothing written
def test_verify_and_animate_write_nothing_else(built, tmp_path):
    """From an empty working folder (no checkpoints/): verify makes the synthetic
    checkpoint again in memory and passes; animate on the torch backend writes its output
    only. Neither touches the working folder, the bundle, its folder or TMPDIR."""
    inputs, cwd, tmp = demo_media(tmp_path / "inputs", 3), tmp_path / "cwd", tmp_path / "tmp"
    for folder in (cwd, tmp):
        folder.mkdir()
    def state():  # TMPDIR's own time changes with onnxruntime's session file
        return {**snapshot(cwd, built.bundle.parent, inputs),
                **snapshot(tmp, folder_times=False)}
    before = state()
    result = command("verify", built.bundle, cwd=cwd, env={"TMPDIR": str(tmp)})
    assert result.returncode == 0 and "verified" in result.stdout, result.stderr
    assert state() == before
    result = command("animate", "--bundle", built.bundle, "--backend", "torch", "--source",
                     inputs / "face.png", "--driving", inputs / "talk.mp4", "--out",
                     cwd / "out.gif", cwd=cwd, env={"TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    after = state()
    assert set(after) - set(before) == {str(cwd / "out.gif")}
    assert {k: v for k, v in after.items() if k in before and k != str(cwd)} == \
        {k: v for k, v in before.items() if k != str(cwd)}


# ------------------------------------------------------------------ build --force
def build_in_process(out, *extra):
    return CliRunner().invoke(cli, ["build", "--config", TINY, "--checkpoint", CKPT, "--out",
                                    str(out), "--formats", "tflite", *extra])


def test_force_never_replaces_a_folder_that_is_not_a_bundle(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    before = snapshot(tmp_path, folder_times=False)
    for extra in ((), ("--force",)):
        line = refusal(build_in_process(thesis, *extra))
        assert line == (f"{thesis}: exists and is not a fomm-convert bundle ({thesis}: no "
                        f"manifest.json (not a bundle)); choose another --out")
        assert "--force" not in line
    assert snapshot(tmp_path, folder_times=False) == before


def test_force_never_replaces_a_bundle_holding_other_files(built, tmp_path):
    bundle = copy(built, tmp_path / "b")
    (bundle / "notes.txt").write_text("mine")
    line = refusal(build_in_process(bundle, "--force"))
    assert line.endswith(f"({bundle / 'notes.txt'} is not in its manifest); choose another "
                         f"--out")
    assert (bundle / "notes.txt").read_text() == "mine"
    (bundle / "notes.txt").unlink()
    manifest = manifest_of(bundle)
    manifest["dataset"] = "other"
    write_manifest(bundle, manifest)
    assert "is not a fomm-convert bundle" in refusal(build_in_process(bundle, "--force"))
    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    import fomm_convert  # the CLI's option type refuses a file before build does
    with pytest.raises(BundleError) as caught:
        fomm_convert.build(TINY, CKPT, formats=["tflite"], out=file_out, force=True,
                           echo=lambda *_: None)
    assert str(caught.value) == f"{file_out}: exists and is not a folder; choose another --out"
    assert file_out.read_text() == "x"


def test_an_existing_bundle_needs_force(built, tmp_path):
    bundle = copy(built, tmp_path / "b")
    assert refusal(build_in_process(bundle)) == f"{bundle} exists; pass --force to replace it"


def test_read_only_out_is_found_before_the_work(tmp_path):
    """A 0o555 folder (root builds without the capability that overrides it): refused
    before the checkpoint is mapped (the weight table's line never shows)."""
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = subprocess.run(as_a_user([sys.executable, "-m", "fomm_convert.cli", "build",
                                           "--config", TINY, "--checkpoint", CKPT, "--out",
                                           str(parent / "bundle"), "--formats", "tflite"]),
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        line = refusal(result)
        assert line.startswith(f"{parent}: cannot write there (") and "choose another --out" \
            in line, line
        assert "weight table" not in result.stdout + result.stderr
    finally:
        parent.chmod(0o755)
    assert list(parent.iterdir()) == []


@pytest.mark.slow  # a build up to its SavedModel writer
def test_disk_full_in_build_is_one_line(tmp_path):
    """A file-size limit makes the first large write fail (EFBIG, as ENOSPC would), here
    inside TensorFlow's SavedModel writer: one line, nothing left."""
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
            "from fomm_convert.cli import main\n"
            f"sys.argv = ['fomm-convert', 'build', '--config', {TINY!r}, '--checkpoint', "
            f"{CKPT!r}, '--out', {str(tmp_path / 'out')!r}, '--formats', 'tflite']\nmain()")
    line = refusal(python("-c", code, cwd=tmp_path))
    assert line == f"{tmp_path / 'out'}: File too large while writing the bundle; nothing " \
                   f"was written"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ concurrency, kills
@pytest.mark.slow  # a whole build beside the refused one
def test_a_second_build_into_the_same_place_fails_at_once(tmp_path):
    out = tmp_path / "out"
    args = ["-m", "fomm_convert.cli", "build", "--config", TINY, "--checkpoint", CKPT,
            "--out", str(out), "--formats", "tflite"]
    first = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        for line in first.stdout:
            if "ignored entries" in line:  # printed once the lock is held
                break
        second = command(*args[2:], cwd=ROOT)
        assert refusal(second) == (f"{out}: another build is writing it (it holds "
                                   f"{tmp_path / '.out.lock'}); wait for it to end")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


KILL_AT_STEP = """
import os, shutil, signal, sys
from pathlib import Path
import fomm_convert.bundle.write as write
final, archive, source = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
force, kill_at, calls = sys.argv[4] == "1", int(sys.argv[5]), [0]

def killing(real):
    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return step

# Every step that moves something into place: the staged archive and commit record
# (os.replace in write_atomic), the bundle (renameat2), the archive.
write.os.replace = killing(os.replace)
write._renameat2 = killing(write._renameat2)
with write.staging(final, archive, force) as stage:
    shutil.copytree(source, stage.bundle, dirs_exist_ok=True)
    (stage.bundle / "NEW").write_text("new")
    stage.drop_scratch()
"""


def _state(final: Path, archive: Path):
    """('old' | 'new' | None, what the archive holds: 'old' | 'new' | None)."""
    bundle = None if not final.exists() else "new" if (final / "NEW").exists() else "old"
    if not archive.exists():
        return bundle, None
    if archive.read_bytes() == b"old archive":
        return bundle, "old"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert names == {final.name, *(f"{final.name}/{p.relative_to(final)}"
                                   for p in final.rglob("*"))}, "archive of another bundle"
    return bundle, "new"


@pytest.mark.parametrize("force", [False, True], ids=["new", "replace"])
def test_kill_at_each_step_of_moving_into_place(built, tmp_path, force):
    """kill -9 at each step of the commit: the old state or the new one, never half; a
    bundle moved without its archive gets it from the next build's cleanup."""
    for kill_at in range(1, 6):
        root = tmp_path / f"k{kill_at}"
        root.mkdir()
        final, archive = root / "tiny", root / "fomm-tiny-x.tar.gz"
        if force:
            copy(built, final)
            archive.write_bytes(b"old archive")
        result = python("-c", KILL_AT_STEP, final, archive, built.bundle, int(force), kill_at,
                        cwd=root)
        killed = result.returncode == -signal.SIGKILL
        assert killed or (kill_at == 5 and result.returncode == 0), result.stderr
        if kill_at == 4:  # killed between the two moves: the bundle is new, the archive not
            assert _state(final, archive) == ("new", "old" if force else None)
        clean_stale(final)
        state = _state(final, archive)
        old = ("old", "old") if force else (None, None)
        assert state in (old, ("new", "new")), (kill_at, state)
        if not killed:
            assert state == ("new", "new")
        leftovers = [p.name for p in root.iterdir() if p.name.startswith(".")]
        assert leftovers in ([], [".tiny.lock"]), leftovers
        if leftovers:  # left by the killed process, and free
            with open(root / ".tiny.lock") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.slow  # builds until killed, then again
def test_killed_build_at_a_random_moment_leaves_nothing_half(tmp_path):
    """A real build killed (SIGKILL) at a random moment: no bundle or a whole one with its
    archive; its scratch and temporary files only inside the staging folder, which the
    next build's cleanup removes; TMPDIR untouched."""
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    delay = random.uniform(1.0, 18.0)  # the model work, and now and then the commit
    proc = subprocess.Popen([sys.executable, "-m", "fomm_convert.cli", "build", "--config",
                             TINY, "--checkpoint", CKPT, "--out", str(out), "--formats",
                             "tflite"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(tmp)})
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=60)
    clean_stale(out)
    archives = list(tmp_path.glob("fomm-tiny-*.tar.gz"))
    if out.exists():
        assert len(archives) == 1 and (out / "manifest.json").is_file(), delay
        from fomm_convert.bundle.open import open_bundle
        open_bundle(out)
    else:
        assert archives == [], delay
    assert not list(tmp_path.glob(".out.staging-*")), delay
    assert {p.name for p in tmp_path.iterdir()} - {"out", "tmp", ".out.lock",
                                                     *(a.name for a in archives)} == set()
    assert [p for p in tmp.iterdir() if p.name not in LIBRARY_FILES] == [], delay
