"""The Python API: what the command line does, as calls (README, "Python API").

    import fomm_convert
    bundle_dir = fomm_convert.build("vox", "checkpoints/vox-cpk.pth.tar")
    fomm_convert.verify(bundle_dir)
    bundle = fomm_convert.open_bundle(bundle_dir)
    summary = bundle.animate("face.png", "talk.mp4", "result.mp4", backend="tflite")
    image = bundle.read_image("face.png")

Errors a caller can cause are fomm_convert.errors.FommError, with a one-line message.
"""
from __future__ import annotations

from pathlib import Path

from .bundle.open import OpenedBundle, open_bundle as open_checked
from .extras import extras_named


def build(config, checkpoint=None, *, formats=None, out=None, force: bool = False,
          synthetic_seed: int | None = None, echo=print) -> Path:
    """Convert a checkpoint into a verified bundle; returns its directory.

    config: a dataset name (specs/NAME.yaml), a spec path or an original-format config.
    checkpoint: default checkpoints/<the spec's file name>; synthetic_seed builds from a
    seeded synthetic checkpoint instead. formats: default the model family's default
    formats (FOMM's: formats.DEFAULT_FORMATS)."""
    with extras_named("fomm_convert.build"):
        from .pipeline.build import build as build_bundle, resolve_checkpoint
        from .spec import load_spec
        spec = load_spec(config)
        path = resolve_checkpoint(spec, checkpoint, synthetic_seed)
        return build_bundle(spec, path, None if formats is None else list(formats),
                            Path(out) if out else None, force,
                            echo)


def verify(bundle, checkpoint=None, echo=print, files_only: bool = False) -> dict:
    """Recheck a bundle's files and each format's parity; {format: ParityReport}
    (files_only: the files, manifest, metadata and model files alone; returns {})."""
    from .pipeline.verify import verify as verify_bundle
    with extras_named("fomm_convert.verify"):
        return verify_bundle(Path(bundle), checkpoint, echo, files_only=files_only)


class Bundle(OpenedBundle):
    """A bundle whose files were checked against its manifest: .path, .manifest, .spec,
    .backend(name, checkpoint=None, threads=None) (numpy in, numpy out: kp_detector,
    process_kp_driving, generator, encode_source, generate; every input checked first),
    .read_image(path), and the two jobs below."""

    def backend(self, name: str, checkpoint=None, threads=None):
        """The named backend, its inputs checked as the command line checks them: images
        float32 (B, H, W, C) in [0, 1] at the spec's frame shape, keypoints as kp_detector
        returns them; a mistake is a one-line FommError."""
        from .animation.checked import CheckedBackend
        return CheckedBackend(super().backend(name, checkpoint, threads), self.spec, name)

    def read_image(self, path):
        """A picture as the models take it, as animate reads its source: float32
        (1, H, W, 3) in [0, 1], its EXIF orientation applied, resized to the spec's frame."""
        from .media import read_image
        return read_image(path, tuple(self.spec.frame_shape[:2]))[None]

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
    return Bundle(opened.path, opened.manifest, opened.spec, gated=opened.gated)
