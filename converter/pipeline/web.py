"""`fomm-convert web`: a static site that animates pictures in the browser on a bundle's
own model files (web/site/ is the page; web/fomm-runtime.mjs runs the files).

The site holds the page, the shared runtime module, the npm runtime's files (from
web/node_modules, never a CDN), copies of the model files one format needs and
site.json: what the page needs to know of the bundle (model family, frame shape,
keypoints, licence, synthetic or not) and each model file's sha256 from the bundle's
manifest, which the page checks before it runs anything. Written in a staging folder beside --out and
renamed into place: a site is whole or absent.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..bundle.open import open_bundle
from ..errors import FommError
from ..families import family_of
from ..formats import FORMATS
from ..io import check_folder_output, json_text, pid_alive
from ..runtime.browser.backend import format_files
from ..runtime.browser.session import web_dir

SITE_FORMATS = ("tflite-static", "tflite-static-fp16", "onnx")
# The browser runtimes of each kind of file, the page's first choice first (it falls back
# from WebGPU to wasm when the browser has none).
RUNTIMES = {"tflite": ("litert-js-webgpu", "litert-js"), "onnx": ("onnx-webgpu", "onnx-web")}
# The npm files each kind needs, under web/node_modules (the page's import map and
# models.mjs name them under runtime/).
RUNTIME_FILES = {
    "tflite": ("@litertjs/core/package.json", "@litertjs/core/dist/index.js",
               "@litertjs/core/wasm", "@litertjs/wasm-utils/package.json",
               "@litertjs/wasm-utils/dist/index.js"),
    "onnx": ("onnxruntime-web/package.json", "onnxruntime-web/dist/ort.wasm.min.mjs",
             "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
             "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
             # the WebGPU build (its own wasm: the asyncify one)
             "onnxruntime-web/dist/ort.webgpu.min.mjs",
             "onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.mjs",
             "onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm"),
}
MODEL_DIR = "model"  # the bundle's files, under their bundle paths
SITE_JSON = "site.json"


class WebError(FommError, ValueError):
    """A site that cannot be written or served (one line, naming the file or option)."""


def in_site(bundle_path: str) -> str:
    return f"{MODEL_DIR}/{bundle_path}"


def site_config(opened, fmt: str) -> dict:
    """site.json: the format's files (site paths) with the manifest's sha256 and size."""
    spec, manifest = opened.spec, opened.manifest
    family = family_of(spec)
    files, external = format_files(spec, fmt)
    listed = {f["path"]: f for f in manifest["files"]}
    paths = {p for sigs in files.values() for p in sigs.values()} | {e["url"] for e in external}
    return {
        "format": fmt,
        "family": family.name,  # the page's calls per frame (web/site/families.mjs)
        "runtimes": list(RUNTIMES[FORMATS[fmt].kind]),
        "dataset": spec.name,
        "version": manifest["version"],
        "frame_shape": list(spec.frame_shape),
        "num_kp": spec.num_kp,
        "jacobian": spec.estimate_jacobian,
        "normalization": family.facet("animation").defaults(spec),
        "keypoint_group": family.facet("animation").KEYPOINT_GROUP,
        "synthetic": manifest["synthetic"],
        "licence": manifest["licence"],
        "files": {model: {sig: in_site(path) for sig, path in sigs.items()}
                  for model, sigs in files.items()},
        "external_data": [{"path": e["path"], "url": in_site(e["url"])} for e in external],
        "sha256": {in_site(p): {"sha256": listed[p]["sha256"], "size": listed[p]["size"]}
                   for p in sorted(paths)},
    }


def _copy(source: Path, target: Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _check_target(out: Path, force: bool):
    """`out` may be written: absent, or (with force) a site this command wrote."""
    check_folder_output(out, force, lambda folder: None if (folder / SITE_JSON).is_file()
                        else "is not a site written by `fomm-convert web`", WebError)


def _remove_stale(out: Path):
    """What a killed `web` left beside `out`: staging folders of processes that are gone."""
    for folder in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = folder.name.removeprefix(f".{out.name}.").partition("-")
        if kind in ("staging", "old") and pid.isdigit() and not pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def write_site(bundle, out, fmt: str = "tflite-static", force: bool = False,
               inputs=()) -> Path:
    """Write the site of `bundle`'s `fmt` files into `out` (with copies of the `inputs`
    files beside index.html, for ?source=NAME&driving=NAME links); returns `out`."""
    if fmt not in SITE_FORMATS:
        raise WebError(f"--format {fmt}: the browser runs {', '.join(SITE_FORMATS)} "
                       f"(LiteRT.js needs the static, batch-1 TFLite files)")
    opened = open_bundle(bundle)  # every file checked against the manifest first
    if fmt not in opened.formats:
        raise WebError(f"{bundle}: has no {fmt} files (it has: {', '.join(opened.formats)}); "
                       f"build it with --formats {fmt}")
    opened.gate([fmt])  # the browser's runtime parses these files
    web = web_dir()
    out = Path(out)
    _check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    config = site_config(opened, fmt)
    _remove_stale(out)
    stage, old = (out.parent / f".{out.name}.{what}-{os.getpid()}" for what in ("staging", "old"))
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        shutil.copytree(web / "site", stage, dirs_exist_ok=True)  # the page
        _copy(web / "fomm-runtime.mjs", stage / "fomm-runtime.mjs")
        for name in RUNTIME_FILES[FORMATS[fmt].kind]:
            _copy(web / "node_modules" / name, stage / "runtime" / name)
        for path in config["sha256"]:
            _copy(opened.path / path.removeprefix(f"{MODEL_DIR}/"), stage / path)
        for path in map(Path, inputs):
            if (stage / path.name).exists():
                raise WebError(f"{path}: its name is taken by the site's own {path.name}")
            _copy(path, stage / path.name)
        (stage / SITE_JSON).write_text(json_text(config))
        _check_target(out, force)
        if out.exists():  # a site of ours, replaced: moved aside, then removed
            os.replace(out, old)
        os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out
