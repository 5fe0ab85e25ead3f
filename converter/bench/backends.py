"""The backends a benchmark times: PyTorch eager from the checkpoint (the baseline), one
per artifact format (formats.FORMATS), then the third-party runtimes over a format's files
(formats.RUNTIME_FORMATS: OpenVINO by default when it is installed, the browser runtimes
only when asked for: they need a browser); which graph each runs and the files it loads."""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from ..bundle.manifest import read_manifest
from ..families import family_of_record
from ..formats import FORMAT_OF_BACKEND, FORMATS, RUNTIME_FORMATS

# Artifact formats in table order: the SavedModel (TFLite's graph, under TensorFlow) last.
_FORMATS = sorted(FORMATS.values(), key=lambda f: f.kind == "savedmodel")
# Backends in table order; torch is the baseline, run from the checkpoint.
_FORMAT_OF = {name: FORMATS[FORMAT_OF_BACKEND[name]]
              for name in (*(f.name for f in _FORMATS), *RUNTIME_FORMATS)}
BENCH_BACKENDS = ("torch", *_FORMAT_OF)
# The in-process third-party runtimes timed by default, with the module each needs.
_DEFAULT_RUNTIMES = {"openvino": "openvino"}
DEFAULT_BACKENDS = ("torch", *(f.name for f in _FORMATS),
                    *(name for name, module in _DEFAULT_RUNTIMES.items() if find_spec(module)))
# Which graph (flops.GRAPHS) each backend runs, for its FLOP floor: the TFLite files and the
# SavedModel hold the XNNPACK-targeted graph, the ONNX and ExecuTorch files the torch twin's
# MLAS-targeted one.
_GRAPH_OF_KIND = {"tflite": "xnnpack", "savedmodel": "xnnpack", "onnx": "mlas",
                  "executorch": "mlas"}
GRAPH_OF = {"torch": "reference", **{b: _GRAPH_OF_KIND[f.kind] for b, f in _FORMAT_OF.items()}}


def _files(backend: str, bundle: Path) -> list[Path]:
    """The paths a backend's format adds to a bundle of its model family (its manifest's
    spec's; SavedModels: their directories)."""
    family = family_of_record(read_manifest(bundle)["spec"])
    return [bundle / p for p in _FORMAT_OF[backend].files(family)]


def bundle_backends(bundle: Path) -> list[str]:
    """The backends whose files a bundle holds, in table order."""
    bundle = Path(bundle)
    found = []
    for name in BENCH_BACKENDS[1:]:
        if _FORMAT_OF[name].kind == "savedmodel":
            ok = all((p / "saved_model.pb").is_file() for p in _files(name, bundle))
        else:
            ok = all(p.is_file() for p in _files(name, bundle))
        if ok:
            found.append(name)
    return found


def loaded_files(backend: str, bundle: Path, checkpoint: Path) -> list[Path]:
    """The files a backend loads (torch: the checkpoint; a SavedModel: every file under its
    directories)."""
    if backend == "torch":
        return [Path(checkpoint)]
    files = []
    for path in _files(backend, Path(bundle)):
        files += [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return files


def artifact_bytes(backend: str, bundle: Path, checkpoint: Path) -> int:
    """Bytes of the files a backend loads."""
    return sum(p.stat().st_size for p in loaded_files(backend, bundle, checkpoint))
