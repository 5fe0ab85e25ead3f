"""The oracle contract: run one backend on an oracle-style NPZ, write the oracle's arrays.

Inputs `source` (1, C, H, W) and `driving` (N, C, H, W), float32 in [0, 1], NCHW as the
original's tensors; outputs use the oracle's names, shapes and layouts, so any backend can
be compared with the original implementation by a few lines of numpy.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
import numpy as np

from .hull import movement_scale
from .spec import SpecError, load_spec

# Backend output layout (NHWC family) -> oracle layout (NCHW family).
TO_ORACLE = {"prediction": (0, 3, 1, 2), "deformed": (0, 3, 1, 2), "mask": (0, 3, 1, 2),
             "occlusion_map": (0, 3, 1, 2), "deformation": (0, 1, 2, 3),
             "sparse_deformed": (0, 1, 4, 2, 3)}
NORMALISATIONS = [(rel, adapt) for rel in (1, 0) for adapt in (1, 0)]


def read_inputs(path: Path, frame_shape) -> tuple[np.ndarray, np.ndarray]:
    """source (1, H, W, C) and driving (N, H, W, C), checked against the model's frame."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in ("source", "driving") if k in data.files}
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: not a readable .npz ({exc})")
    h, w, c = frame_shape
    for name, lead in (("source", 1), ("driving", None)):
        if name not in arrays:
            raise click.ClickException(f"{path}: no '{name}' array")
        a = arrays[name]
        if a.ndim != 4 or a.shape[1:] != (c, h, w) or (lead and a.shape[0] != lead) \
                or a.shape[0] < 1:
            want = f"({lead or 'N'}, {c}, {h}, {w})"
            raise click.ClickException(f"{path}: '{name}' has shape {a.shape}, expected {want}")
    return tuple(np.ascontiguousarray(arrays[k].astype(np.float32).transpose(0, 2, 3, 1))
                 for k in ("source", "driving"))


def predict(backend, source: np.ndarray, driving: np.ndarray, batch_size: int = 4,
            positions=None) -> dict:
    """Every oracle array for one source (1, H, W, C) and N driving frames (N, H, W, C).

    `positions` restricts the generator to those driving rows (all by default).
    """
    out = {}
    kp_source = backend.kp_detector(source)
    # Per frame at batch 1, as the original demo runs the detector.
    frames = [backend.kp_detector(driving[i:i + 1]) for i in range(len(driving))]
    kp_driving = {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}
    kp_initial = {k: v[:1] for k, v in kp_driving.items()}
    for key, value in kp_source.items():
        out[f"kp_source_{key}"] = value
        out[f"kp_driving_{key}"] = kp_driving[key]
    normalised = {}
    for rel, adapt in NORMALISATIONS:
        norm = backend.process_kp_driving(kp_driving, kp_initial, kp_source,
                                          use_relative_movement=bool(rel),
                                          use_relative_jacobian=bool(rel),
                                          adapt_movement_scale=bool(adapt))
        normalised[rel, adapt] = norm
        for key, value in norm.items():
            out[f"norm_rel{rel}_adapt{adapt}_{key}"] = value
    out["adapt_movement_scale"] = np.float64(movement_scale(kp_source["value"],
                                                            kp_initial["value"]))
    positions = np.arange(len(driving)) if positions is None else np.asarray(positions)
    out["gen_frame_positions"] = positions.astype(np.int64)
    for prefix, (rel, adapt), names in (("gen_", (1, 1), None), ("gen_abs_", (0, 0), ["prediction"])):
        chunks = []
        for start in range(0, len(positions), batch_size):
            rows = positions[start:start + batch_size]
            kp = {k: v[rows] for k, v in normalised[rel, adapt].items()}
            chunks.append(backend.generator(source, kp, kp_source))
        for key in names or chunks[0]:
            value = np.concatenate([c[key] for c in chunks])
            out[prefix + key] = np.ascontiguousarray(value.transpose(TO_ORACLE[key]))
    return out


def write_npz(path: Path, arrays: dict):
    """Write atomically: a failed run never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def open_backend(name: str, spec, checkpoint: str | None, bundle: str | None):
    """The named backend for a spec, from a checkpoint or a bundle as it needs."""
    from .runtime import CHECKPOINT_BACKENDS, backend_names, load_backend
    if name not in backend_names():
        raise click.ClickException(f"unknown backend '{name}' (known: {', '.join(backend_names())})")
    if name not in CHECKPOINT_BACKENDS:
        if bundle is None:
            raise click.ClickException(f"--backend {name} needs --bundle")
        try:
            return load_backend(name, spec=spec, bundle=bundle)
        except (OSError, ValueError) as exc:
            raise click.ClickException(str(exc).splitlines()[0])
    if checkpoint is None:
        raise click.ClickException(f"--backend {name} needs --checkpoint")
    from .checkpoint import CheckpointError, load_checkpoint
    try:
        return load_backend(name, spec=spec, checkpoint=load_checkpoint(checkpoint))
    except (CheckpointError, ValueError) as exc:
        raise click.ClickException(str(exc))


@click.command("predict")
@click.option("--config", "config", required=True,
              help="Dataset name (specs/NAME.yaml), spec path, or original-format config.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint (.pth.tar).")
@click.option("--bundle", type=click.Path(file_okay=False), help="Release bundle directory.")
@click.option("--inputs", "inputs", required=True, type=click.Path(dir_okay=False),
              help="NPZ with source (1,C,H,W) and driving (N,C,H,W), float32 in [0,1].")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output NPZ (oracle names and layouts).")
@click.option("--backend", default="torch", show_default=True, help="Backend to run.")
@click.option("--align-corners/--no-align-corners", default=None,
              help="grid_sample convention (default: the spec's).")
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(1),
              help="Generator frames per call.")
@click.option("--gen-frames", default=None, metavar="I,J,...",
              help="Run the generator on these driving rows only (default: all).")
def predict_command(config, checkpoint, bundle, inputs, out, backend, align_corners,
                    batch_size, gen_frames):
    """Run one backend on an oracle-style NPZ and write the oracle's arrays."""
    try:
        spec = load_spec(config)
    except SpecError as exc:
        raise click.ClickException(str(exc))
    if align_corners is not None:
        spec = spec.with_align_corners(align_corners)
    source, driving = read_inputs(Path(inputs), spec.frame_shape)
    positions = None
    if gen_frames:
        try:
            positions = [int(i) for i in gen_frames.split(",")]
        except ValueError:
            raise click.ClickException(f"--gen-frames: expected comma-separated rows, got {gen_frames!r}")
        if not all(0 <= i < len(driving) for i in positions):
            raise click.ClickException(f"--gen-frames: rows must be in 0..{len(driving) - 1}")
    runner = open_backend(backend, spec, checkpoint, bundle)
    arrays = predict(runner, source, driving, batch_size=batch_size, positions=positions)
    write_npz(Path(out), arrays)
    click.echo(f"{out}: {len(arrays)} arrays, {len(driving)} frames, backend {backend}")
