"""`fomm-convert predict`: the oracle contract."""
from __future__ import annotations

from pathlib import Path

import click


def _rows(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(i) for i in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated rows, got {text!r}",
                                 param_hint="--gen-frames") from None


@click.command("predict")
@click.option("--config", "config",
              help="Dataset name (specs/NAME.yaml), spec path, or original-format config "
                   "(default with --bundle: the bundle's spec).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint (.pth.tar).")
@click.option("--bundle", type=click.Path(file_okay=False), help="Release bundle directory.")
@click.option("--inputs", "inputs", required=True, type=click.Path(dir_okay=False),
              help="NPZ with source (1,C,H,W) and driving (N,C,H,W), float32 in [0,1].")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output NPZ (oracle names and layouts).")
@click.option("--backend", default=None,
              help="Backend to run (default: with --bundle and no --checkpoint, the "
                   "bundle's fastest lite runtime, e.g. tflite; else torch).")
@click.option("--force", is_flag=True, help="Replace an existing --out.")
@click.option("--align-corners/--no-align-corners", default=None,
              help="grid_sample convention (default: the spec's).")
@click.option("--batch-size", default=None, type=click.IntRange(1),
              help="Generator frames per call (default: the model family's: FOMM 4; TPSMM 1, "
                   "as the original computes each frame).")
@click.option("--gen-frames", default=None, metavar="I,J,...",
              help="Run the generator on these driving rows only (default: all).")
def predict_command(config, checkpoint, bundle, inputs, out, backend, force, align_corners,
                    batch_size, gen_frames):
    """Run one backend on an oracle-style NPZ and write the oracle's arrays."""
    from ..pipeline.predict import predict_file
    arrays, frames, used = predict_file(config, Path(inputs), Path(out), backend,
                                        checkpoint=checkpoint, bundle=bundle,
                                        align_corners=align_corners, batch_size=batch_size,
                                        positions=_rows(gen_frames), force=force)
    chosen = "" if backend else " (the default; --backend to choose)"
    click.echo(f"{out}: {len(arrays)} arrays, {frames} frames, backend {used}{chosen}")
