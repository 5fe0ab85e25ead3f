"""`fomm-convert demo`: the whole pipeline so far on a fresh machine, no downloads.

The official checkpoints cannot be fetched here, so the demo synthesises a seeded vox
checkpoint in the original's format and makes its own inputs (a drawn face whose features
move), then runs them through the torch reference.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def demo_inputs(frame_shape, frames: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A drawn face (1, H, W, 3) and `frames` driving frames in which it turns and talks."""
    h, w, _ = frame_shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = 2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1

    def face(dx, mouth):
        img = np.stack([0.25 + 0.2 * (y + 1), 0.3 + 0.1 * x, 0.45 - 0.1 * y], -1)
        head = ((x - dx) / 0.55) ** 2 + (y / 0.7) ** 2 < 1
        img[head] = (0.85, 0.65, 0.5)
        for ex in (-0.22, 0.22):
            img[((x - dx - ex) / 0.1) ** 2 + ((y + 0.2) / 0.07) ** 2 < 1] = (0.1, 0.1, 0.15)
        img[((x - dx) / 0.25) ** 2 + ((y - 0.35) / mouth) ** 2 < 1] = (0.6, 0.15, 0.2)
        return img
    source = face(0.0, 0.05)[None]
    driving = np.stack([face(0.15 * np.sin(t), 0.03 + 0.07 * abs(np.sin(2 * t)))
                        for t in np.linspace(0, np.pi, frames)])
    return source.astype(np.float32), driving.astype(np.float32)


@click.command("demo")
@click.option("--dataset", default="vox", show_default=True, help="Dataset spec to demo.")
@click.option("--out", default=str(ROOT / "artifacts" / "demo"), show_default=True,
              type=click.Path(file_okay=False), help="Where the demo writes.")
def demo_command(dataset, out):
    """Synthesise a checkpoint, make inputs, and run the torch reference on them."""
    from .checkpoint import load_checkpoint
    from .predict import predict, write_npz
    from .runtime import load_backend
    from .spec import load_spec
    from .synth import write_checkpoint

    spec = load_spec(dataset)
    out = Path(out)
    ckpt_path = ROOT / "checkpoints" / f"{spec.name}-synthetic-seed7.pth.tar"
    if not ckpt_path.exists():
        write_checkpoint(spec, 7, ckpt_path)
    checkpoint = load_checkpoint(ckpt_path)
    click.secho(f"SYNTHETIC WEIGHTS ({ckpt_path.name}): the pipeline is real, the pictures "
                f"are not meant to look like anything.", fg="yellow")
    source, driving = demo_inputs(spec.frame_shape)
    write_npz(out / "inputs.npz", {"source": source.transpose(0, 3, 1, 2),
                                   "driving": driving.transpose(0, 3, 1, 2)})
    backend = load_backend("torch", spec=spec, checkpoint=checkpoint)
    start = time.perf_counter()
    arrays = predict(backend, source, driving)
    seconds = time.perf_counter() - start
    write_npz(out / f"{spec.name}-torch.npz", arrays)
    pred = arrays["gen_prediction"]
    click.echo(f"{spec.name}: {len(driving)} frames {spec.frame_shape[1]}x{spec.frame_shape[0]}"
               f" through the torch reference in {seconds:.1f} s; prediction range "
               f"[{pred.min():.3f}, {pred.max():.3f}], adapt scale "
               f"{arrays['adapt_movement_scale']:.4f}")
    click.echo(f"wrote {out / 'inputs.npz'} and {out / (spec.name + '-torch.npz')}")
