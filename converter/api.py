"""The Python API: what the command line does, as calls (README, "Python API").

    import fomm_convert
    bundle_dir = fomm_convert.build("vox", "checkpoints/vox-cpk.pth.tar")
    fomm_convert.verify(bundle_dir)
    bundle = fomm_convert.open_bundle(bundle_dir)
    summary = bundle.animate("face.png", "talk.mp4", "result.mp4", backend="tflite")
    image = bundle.read_image("face.png")
    summary = fomm_convert.animate_many(bundle_dir, "out", jobs="jobs.csv", engine="local")
    fomm_convert.animate("face.png", "talk.mp4", "avd.mp4", config="tpsmm-vox",
                         checkpoint="checkpoints/vox.pth.tar", mode="avd")

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
        """`fomm-convert animate`: options backend, checkpoint, threads, batch_size,
        best_frame, visualize, crop, force and the model family's own (FOMM: relative,
        adapt_scale; TPSMM: mode, "relative", "standard" or "avd"); returns the run's
        summary."""
        from .animation.jobs import animate
        return animate(self, source, driving, out, **options)

    def reconstruct(self, video, out=None, **options):
        """`fomm-convert reconstruct`; returns the Reconstruction (l1, per frame)."""
        from .animation.jobs import reconstruct
        return reconstruct(self, video, out, **options)


def animate_many(bundle, out, **options) -> dict:
    """`fomm-convert animate-many`: jobs= a .csv/.jsonl jobs file, or reconstruct= a folder or
    list of videos; engine ("local" or "ray"), address, workers, threads, backend,
    checkpoint, batch_size, force, retries; returns the run's summary (many/run.py)."""
    from .many.run import animate_many as run
    return run(bundle, out, **options)


def animate(source, driving, out, *, config, checkpoint, **options) -> dict:
    """`fomm-convert animate --config`: a config's (a dataset name, a spec or an original
    config) checkpoint on a checkpoint backend (backend "torch", the default, or "tf"),
    no bundle; the options of Bundle.animate."""
    from .animation.jobs import animate as run
    return run(None, source, driving, out, config=config, checkpoint=checkpoint, **options)


def reconstruct(video, out=None, *, config, checkpoint, **options):
    """`fomm-convert reconstruct --config`: as animate() here, the options of
    Bundle.reconstruct."""
    from .animation.jobs import reconstruct as run
    return run(None, video, out, config=config, checkpoint=checkpoint, **options)


def open_bundle(path) -> Bundle:
    opened = open_checked(path)
    return Bundle(opened.path, opened.manifest, opened.spec, gated=opened.gated)
