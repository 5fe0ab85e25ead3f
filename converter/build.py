"""`fomm-convert build`: checkpoint -> verified release bundle, in one direction.

load (safe) -> TF graph through the weight table -> per-layer parity against the torch
reference -> export (SavedModel, TFLite, ONNX, with metadata) -> end-to-end parity of
every artifact -> manifest -> the bundle moved into place, and its archive.
Nothing is written under the bundle's name unless every parity check passes.
"""
from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from .bundle import (DEFAULT_FORMATS, FORMATS, BundleError, bundle_version, file_table,
                     staging, toolchain_versions, write_archive, write_json)
from .licence import licence
from .paths import ARTIFACTS, CHECKPOINTS
from .spec import Spec

# Format -> (runtime backend, tolerance profile of parity/tolerances.yaml).
FORMAT_CHECKS = {"savedmodel": ("savedmodel", "fp32"), "tflite": ("tflite", "fp32"),
                 "tflite-fp16": ("tflite-fp16", "fp16"), "tflite-int8": ("tflite-int8", "int8"),
                 "onnx": ("onnx", "fp32")}
TFLITE_PRECISIONS = {"tflite": "fp32", "tflite-fp16": "fp16", "tflite-int8": "int8"}


class ParityFailed(BundleError):
    def __init__(self, message: str, report_path: Path):
        super().__init__(message)
        self.report_path = report_path


@dataclass
class Progress:
    """One line per step, with the time it took: builds of full-size models take minutes."""
    echo: callable = click.echo
    start: float = field(default_factory=time.perf_counter)

    def step(self, text: str):
        self.echo(f"[{time.perf_counter() - self.start:6.1f}s] {text}")


def build(spec: Spec, checkpoint_path: Path, formats=DEFAULT_FORMATS, out: Path | None = None,
          force: bool = False, echo=click.echo) -> Path:
    """Build, verify and write the bundle; returns its directory."""
    from fomm_convert.parity.end_to_end import format_parity
    from fomm_convert.parity.layers import layer_parity

    from .checkpoint import load_checkpoint, state_dict_sha256
    from .export.metadata import model_metadata
    from .export.savedmodel import export_savedmodels, model_functions
    from .runtime import load_backend
    from .tf_model.weights import build_tf_models

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise BundleError(f"unknown format {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    progress = Progress(echo)
    checkpoint = load_checkpoint(checkpoint_path)
    weights = {net: state_dict_sha256(getattr(checkpoint, net))
               for net in ("kp_detector", "generator")}
    version = bundle_version(spec.to_dict(), weights, formats, checkpoint.synthetic, {})
    final = Path(out) if out else ARTIFACTS / spec.name / version
    if final.exists() and not force:
        raise BundleError(f"{final} exists; pass --force to replace it")
    progress.step(f"{spec.name} {version}: {checkpoint.path.name}"
                  f"{' (SYNTHETIC weights)' if checkpoint.synthetic else ''}; ignored entries: "
                  f"{', '.join(checkpoint.ignored) or 'none'}")

    kp_detector, generator, weight_reports = build_tf_models(spec, checkpoint, return_reports=True)
    progress.step("weight table: " + "; ".join(r.summary() for r in weight_reports.values()))
    # Per-layer parity runs on the reference-structured graph (kp_detector, generator);
    # the exported generator is the fast graph derived from its weights
    # (converter/tf_model/fast.py). The detector is exported as it is: its temperature-0.1
    # softmax turns any change of rounding into keypoint error (vox-256 against the original:
    # 1.6e-5 folded, 9.6e-6 as is), and it is 3% of a frame's work. TFLite gets it with its
    # convolutions summed in chunks (export.tflite.tflite_sources).
    from .tf_model.fast import fast_models
    _, fast_generator = fast_models(kp_detector, generator)
    functions = model_functions(spec, kp_detector, fast_generator)
    layers = layer_parity(spec, checkpoint, kp_detector, functions["process_kp_driving"][0],
                          generator)
    progress.step(f"per-layer parity vs torch: {_verdict(layers)}")
    reports = {"layers": layers}
    if not layers.passed:
        _fail(final, version, reports)

    ckpt_info = {"file": checkpoint.path.name, "sha256": checkpoint.sha256,
                 "weights_sha256": weights}
    metadata = model_metadata(spec, version, ckpt_info, checkpoint.synthetic)
    reference = load_backend("torch", spec=spec, checkpoint=checkpoint)
    with staging(final, force) as tmp, tempfile.TemporaryDirectory() as scratch:
        saved = tmp / "savedmodel" if "savedmodel" in formats else Path(scratch) / "savedmodel"
        export_savedmodels(functions, saved)
        progress.step(f"SavedModel written{'' if 'savedmodel' in formats else ' (scratch)'}")
        if set(TFLITE_PRECISIONS) & set(formats):
            from .export.tflite import export_tflite, tflite_sources
            sources = tflite_sources(saved, kp_detector, Path(scratch) / "tflite-savedmodel")
        for fmt, precision in TFLITE_PRECISIONS.items():
            if fmt in formats:
                export_tflite(sources, tmp / "tflite", precision, metadata)
                progress.step(f"TFLite {precision} written")
        if "onnx" in formats:
            from .export.onnx import export_onnx
            export_onnx(spec, checkpoint, tmp / "onnx", metadata)
            progress.step("ONNX written")
        for fmt in formats:
            backend, profile = FORMAT_CHECKS[fmt]
            candidate = load_backend(backend, spec=spec, bundle=tmp)
            reports[fmt] = format_parity(reference, candidate, spec.frame_shape, profile)
            progress.step(f"end-to-end parity {fmt} ({profile}): {_verdict(reports[fmt])}")
        if not all(r.passed for r in reports.values()):
            _fail(final, version, reports)
        quality = {}
        if "tflite-int8" in formats and "tflite" in formats:
            quality["tflite-int8"] = int8_quality(spec, tmp)
            progress.step("int8 vs float32 TFLite: PSNR {psnr_db_mean:.1f} dB mean, "
                          "{psnr_db_min:.1f} min; keypoint drift {keypoint_drift_max:.1e}"
                          .format(**quality["tflite-int8"]))
        _write_reports(tmp, reports, weight_reports, formats)
        manifest = {
            "dataset": spec.name, "version": version, "spec": spec.to_dict(),
            "checkpoint": ckpt_info, "synthetic": checkpoint.synthetic,
            "formats": list(formats), "toolchain": toolchain_versions(),
            "parity": {name: _summary(r) for name, r in reports.items()},
            "quality": quality,
            "licence": licence(checkpoint.synthetic),
            "files": file_table(tmp),
        }
        write_json(tmp / "manifest.json", manifest)
    archive = final.parent.parent / f"fomm-{spec.name}-{version}.tar.gz" if out is None \
        else final.parent / f"fomm-{spec.name}-{version}.tar.gz"
    write_archive(final, archive)
    progress.step(f"bundle {final}; archive {archive}")
    return final


def int8_quality(spec, bundle: Path) -> dict:
    """int8 against float32 TFLite on the demo's drawn face (8 frames), for the manifest;
    `fomm-convert bench --quality-media` measures it on real media."""
    from .bench import variant_quality
    from .fixtures import demo_inputs
    from .runtime import load_backend
    backends = [load_backend(name, spec=spec, bundle=bundle) for name in ("tflite", "tflite-int8")]
    quality = variant_quality(spec, *backends, *demo_inputs(spec.frame_shape, 8))
    return {"inputs": "the demo's drawn face, 8 frames",
            **{k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in quality.items()}}


def _verdict(report) -> str:
    summary = report.summary()
    if report.passed:
        return f"pass ({summary['layers']} checks)"
    return f"FAIL at {report.first_divergence} ({summary['counts']})"


def _summary(report) -> dict:
    worst = {}
    for layer in report.layers:
        if layer.max_abs is not None and layer.stage:
            worst[layer.stage] = max(worst.get(layer.stage, 0.0), float(layer.max_abs))
    return {"profile": report.profile, "passed": report.passed,
            "checks": len(report.layers), "max_abs_by_stage": {
                k: float(f"{v:.3g}") for k, v in sorted(worst.items())}}


def _write_reports(root: Path, reports: dict, weight_reports: dict, formats):
    parity = root / "parity"
    parity.mkdir()
    write_json(parity / "report.json", {name: r.to_dict() for name, r in reports.items()})
    (parity / "report.md").write_text("\n\n".join(
        r.to_markdown(title=f"Parity: {'per layer, TF graph' if name == 'layers' else name}"
                      " vs the torch reference") for name, r in reports.items()) + "\n")
    write_json(parity / "weights.json", {net: r.to_dict() for net, r in weight_reports.items()})
    tflites = [f for f in TFLITE_PRECISIONS if f in formats]
    if tflites:
        from .export.tflite import op_report, op_report_markdown, tflite_filename
        ops = {model: op_report(root / "tflite" / tflite_filename(model))
               for model in ("kp_detector", "process_kp_driving", "generator")
               if (root / "tflite" / tflite_filename(model)).exists()}
        if ops:
            write_json(root / "tflite" / "ops.json", ops)
            (root / "tflite" / "ops.md").write_text(op_report_markdown(ops))


def _fail(final: Path, version: str, reports: dict):
    """Leave a readable report beside where the bundle would have been, and stop."""
    final.parent.mkdir(parents=True, exist_ok=True)
    stem = final.parent / f"{final.name}.parity-failed"
    write_json(Path(f"{stem}.json"), {name: r.to_dict() for name, r in reports.items()})
    Path(f"{stem}.md").write_text("\n\n".join(
        r.to_markdown(title=f"Parity: {name}") for name, r in reports.items()) + "\n")
    failed = [f"{name} at {r.first_divergence}" for name, r in reports.items() if not r.passed]
    raise ParityFailed(f"parity failed ({'; '.join(failed)}): no bundle written; "
                       f"report {stem}.md", Path(f"{stem}.md"))


@click.command("build")
@click.option("--dataset", help="Dataset spec name (specs/NAME.yaml).")
@click.option("--config", help="Spec path or original-format config (custom models).")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Checkpoint; default checkpoints/<the spec's file name>.")
@click.option("--synthetic", is_flag=True, help="Build from a seeded synthetic checkpoint.")
@click.option("--seed", default=7, show_default=True, help="Seed of --synthetic.")
@click.option("--formats", default=",".join(DEFAULT_FORMATS), show_default=True,
              help=f"Comma-separated, from {', '.join(FORMATS)}.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Bundle directory; default artifacts/<dataset>/<version>.")
@click.option("--force", is_flag=True, help="Replace an existing bundle of that version.")
def build_command(dataset, config, checkpoint, synthetic, seed, formats, out, force):
    """Convert a checkpoint into a verified release bundle."""
    from .checkpoint import CheckpointError
    from .spec import SpecError, load_spec
    from .tf_model.weights import WeightTableError

    if bool(dataset) == bool(config):
        raise click.UsageError("give exactly one of --dataset and --config")
    # A terminated build unwinds like an interrupted one: its staging directory goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        spec = load_spec(dataset or config)
        if synthetic:
            if checkpoint:
                raise click.UsageError("--synthetic and --checkpoint exclude each other")
            from .synth import synthetic_checkpoint
            checkpoint = synthetic_checkpoint(spec, seed)
        elif checkpoint is None:
            if spec.checkpoint is None:
                raise click.UsageError(f"{spec.path} names no checkpoint: pass --checkpoint")
            checkpoint = CHECKPOINTS / spec.checkpoint
        wanted = [f.strip() for f in formats.split(",") if f.strip()]
        build(spec, Path(checkpoint), wanted, Path(out) if out else None, force)
    except (SpecError, CheckpointError, WeightTableError, BundleError) as exc:
        raise click.ClickException(str(exc))
