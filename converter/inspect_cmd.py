"""`fomm-convert inspect`: what an artifact or a checkpoint holds.

- `inspect FILE.tflite|FILE.onnx`: the metadata and signatures, with the lite runtime only
  (no TensorFlow, torch or onnx package).
- `inspect --config C --checkpoint K`: every checkpoint tensor, the weight-table rule that
  took it (or dropped it) and its TF variable, plus the ignored top-level entries.
"""
from __future__ import annotations

import json
from pathlib import Path

import click


def describe_artifact(path: Path) -> dict:
    if path.suffix == ".tflite":
        from .export.tflite import op_report, read_tflite_metadata, tflite_signatures
        ops = op_report(path)
        return {"file": str(path), "metadata": read_tflite_metadata(path),
                "signatures": tflite_signatures(path), "ops": ops}
    if path.suffix == ".onnx":
        import onnxruntime as ort  # the lite runtime reads ONNX metadata; no onnx package
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta()
        props = dict(meta.custom_metadata_map)
        return {"file": str(path), "metadata": json.loads(props.pop("fomm_convert.json", "null")),
                "other_metadata": props, "description": meta.description,
                "inputs": [(i.name, i.shape) for i in session.get_inputs()],
                "outputs": [(o.name, o.shape) for o in session.get_outputs()]}
    raise click.ClickException(f"{path}: not a .tflite or .onnx file")


def describe_checkpoint(config: str, checkpoint: str) -> str:
    from .checkpoint import load_checkpoint
    from .spec import load_spec
    from .tf_model.weights import build_tf_models

    spec = load_spec(config)
    ckpt = load_checkpoint(checkpoint)
    _, _, reports = build_tf_models(spec, ckpt, return_reports=True)
    lines = [f"{ckpt.path}  sha256 {ckpt.sha256}"
             f"{'  (SYNTHETIC weights)' if ckpt.synthetic else ''}",
             f"ignored entries: {', '.join(ckpt.ignored) or 'none'}"]
    for net, report in reports.items():
        lines.append(f"\n{report.summary()}")
        for e in report.entries:
            target = f"{e.tf_path} ({e.transform})" if e.dropped is None \
                else f"dropped: {e.dropped}"
            lines.append(f"  {e.torch_key:64s} {str(tuple(e.torch_shape)):18s} "
                         f"{e.rule:18s} {target}")
    return "\n".join(lines)


@click.command("inspect")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--config", help="Spec name/path or original config (with --checkpoint).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint to inspect.")
def inspect_command(file, config, checkpoint):
    """Show an artifact's metadata and signatures, or how a checkpoint maps onto the graph."""
    if file and (config or checkpoint):
        raise click.UsageError("give FILE, or --config with --checkpoint, not both")
    if file:
        click.echo(json.dumps(describe_artifact(Path(file)), indent=1, ensure_ascii=False))
        return
    if not (config and checkpoint):
        raise click.UsageError("give FILE, or --config with --checkpoint")
    from .checkpoint import CheckpointError
    from .spec import SpecError
    from .tf_model.weights import WeightTableError
    try:
        click.echo(describe_checkpoint(config, checkpoint))
    except (SpecError, CheckpointError, WeightTableError) as exc:
        raise click.ClickException(str(exc))
