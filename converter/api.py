"""The Python API: what the command line does, as calls (README, "Python API").

    import fomm_convert
    bundle_dir = fomm_convert.build("vox", "checkpoints/vox-cpk.pth.tar")
    fomm_convert.verify(bundle_dir)
    bundle = fomm_convert.open_bundle(bundle_dir)
    summary = bundle.animate("face.png", "talk.mp4", "result.mp4", backend="tflite")

Errors a caller can cause are fomm_convert.errors.FommError, with a one-line message.
"""
from __future__ import annotations

from pathlib import Path

from .bundle.open import OpenedBundle, open_bundle as open_checked
from .formats import DEFAULT_FORMATS


def build(config, checkpoint=None, *, formats=DEFAULT_FORMATS, out=None, force: bool = False,
          synthetic_seed: int | None = None, echo=print) -> Path:
    """Convert a checkpoint into a verified bundle; returns its directory.

    config: a dataset name (specs/NAME.yaml), a spec path or an original-format config.
    checkpoint: default checkpoints/<the spec's file name>; synthetic_seed builds from a
    seeded synthetic checkpoint instead."""
    from .pipeline.build import build as build_bundle, resolve_checkpoint
    from .spec import load_spec
    spec = load_spec(config)
    path = resolve_checkpoint(spec, checkpoint, synthetic_seed)
    return build_bundle(spec, path, list(formats), Path(out) if out else None, force, echo)


def verify(bundle, checkpoint=None, echo=print) -> dict:
    """Recheck a bundle's files and each format's parity; {format: ParityReport}."""
    from .pipeline.verify import verify as verify_bundle
    return verify_bundle(Path(bundle), checkpoint, echo)


class Bundle(OpenedBundle):
    """A bundle whose files were checked against its manifest: .path, .manifest, .spec,
    .backend(name, checkpoint=None, threads=None) (numpy in, numpy out: kp_detector,
    process_kp_driving, generator, encode_source, generate), and the two jobs below."""

    def animate(self, source, driving, out, **options) -> dict:
        """`fomm-convert animate`: options backend, checkpoint, threads, relative,
        adapt_scale, batch_size, best_frame, visualize; returns the run's summary."""
        from .animation.jobs import animate
        return animate(self, source, driving, out, **options)

    def reconstruct(self, video, out=None, **options):
        """`fomm-convert reconstruct`; returns the Reconstruction (l1, per frame)."""
        from .animation.jobs import reconstruct
        return reconstruct(self, video, out, **options)


def open_bundle(path) -> Bundle:
    opened = open_checked(path)
    return Bundle(opened.path, opened.manifest, opened.spec)
