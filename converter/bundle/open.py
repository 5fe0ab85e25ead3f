"""Opening a bundle, in one place: its manifest validated (bundle/schema.py) and checked
against its files and artifacts, its model files through the gate (bundle/models_check)
before any runtime parses one, its spec, the checkpoint it was built from (its weights
checked against the manifest; a missing synthetic one is made again in memory, never
written) and any backend, from the bundle's artifacts or from a checkpoint.

Lite: torch, tensorflow and the runtimes are imported only when a backend is loaded.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import one_line
from ..extras import extras_named, missing_extra
from ..formats import FASTEST_FIRST, FORMAT_OF_BACKEND
from ..paths import CHECKPOINTS, SYNTHETIC_NAME
from .artifacts import check_artifacts
from .manifest import MANIFEST, BundleError, check_files, read_manifest, unlisted_files
from .models_check import check_format
from .schema import check_identity, validate_manifest


def bundle_spec(bundle, manifest: dict):
    """The resolved spec a bundle was built from (recorded in its validated manifest)."""
    from ..spec import SpecError, spec_from_data
    try:
        return spec_from_data(Path(bundle) / MANIFEST, manifest["spec"])
    except SpecError as exc:
        raise BundleError(f"{bundle}: its manifest holds no usable spec ({one_line(exc)})") \
            from None


def checked_manifest(bundle) -> tuple[dict, object]:
    """(manifest, spec) of a bundle: the manifest read within its bounds, validated against
    the schema, and consistent (version digest, licence, dataset, spec)."""
    manifest = read_manifest(bundle)
    validate_manifest(bundle, manifest)
    spec = bundle_spec(bundle, manifest)
    check_identity(bundle, manifest, spec)
    return manifest, spec


def not_a_bundle(path) -> str | None:
    """Why a folder is not one of our bundles (None when it is): no valid manifest, a link
    or anything else inside, or a file its manifest does not list. Its files' contents are
    not hashed: a damaged bundle is still one of ours."""
    try:
        manifest, _ = checked_manifest(path)
        extra = unlisted_files(path, manifest)
    except BundleError as exc:
        return one_line(exc)
    return f"{Path(path) / extra[0]} is not in its manifest" if extra else None


def find_checkpoint(manifest: dict, spec, given=None):
    """The checkpoint a bundle was built from: `given`, else the manifest's file under
    checkpoints/; a missing synthetic one is made again from its seed, in memory (a
    loaded Checkpoint: nothing is written)."""
    if given:
        return Path(given)
    name = manifest["checkpoint"]["file"]  # a plain file name (validated)
    path = CHECKPOINTS / name
    synthetic = SYNTHETIC_NAME.match(name)
    if (not path.exists() and manifest["synthetic"] and synthetic
            and synthetic.group("spec") == spec.name):
        return synthetic_in_memory(spec, int(synthetic.group("seed")), path)
    if not path.exists():
        raise BundleError(f"{path}: the bundle's checkpoint is not there; pass --checkpoint")
    return path


def synthetic_in_memory(spec, seed: int, path: Path):
    """The seeded synthetic checkpoint of a spec as a loaded Checkpoint, never a file
    (`path`: the file it stands for, in messages; sha256 None: there are no file bytes)."""
    from ..checkpoint import checkpoint_from_object
    from ..synth import make_checkpoint
    return checkpoint_from_object(path, make_checkpoint(spec, seed), spec.family)


def open_backend(name: str, spec, *, bundle=None, checkpoint=None, threads=None):
    """The named backend for a spec: a bundle backend runs `bundle`'s artifacts, a
    checkpoint backend (tf, torch) converts `checkpoint` (a path or a loaded Checkpoint).
    Every failure is a one-line BundleError. It runs no gate: a bundle's backend is opened
    through OpenedBundle.backend, which does."""
    from ..runtime import load_backend
    check_backend_name(name)
    extra = {} if threads is None else {"threads": threads}
    if name in FORMAT_OF_BACKEND:
        if bundle is None:
            raise BundleError(f"backend {name} needs --bundle")
        try:
            return load_backend(name, spec=spec, bundle=Path(bundle), **extra)
        except ImportError as exc:
            missing = missing_extra(exc, f"backend {name}")
            raise BundleError(one_line(missing) if missing else f"backend {name} needs a "
                              f"package that is not installed ({one_line(exc)})") from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise BundleError(f"{bundle}: cannot load the {name} artifacts "
                              f"({one_line(exc)})") from None
    if checkpoint is None:
        raise BundleError(f"backend {name} needs --checkpoint")
    from ..checkpoint import CheckpointError
    try:
        with extras_named(f"backend {name}"):
            return load_backend(name, spec=spec, checkpoint=_loaded(checkpoint, spec),
                                **extra)
    except (CheckpointError, ValueError, OSError) as exc:
        raise BundleError(one_line(exc)) from None


def check_backend_name(name: str):
    """An unknown backend is refused first, before any file is read or runtime loaded."""
    from ..runtime import backend_names
    if name not in backend_names():
        raise BundleError(f"unknown backend '{name}' (known: {', '.join(backend_names())})")


def _loaded(checkpoint, spec):
    """A Checkpoint of the spec's family from a path (or itself); CheckpointError for
    unusable files."""
    from ..checkpoint import Checkpoint, load_checkpoint
    return checkpoint if isinstance(checkpoint, Checkpoint) \
        else load_checkpoint(checkpoint, family=spec.family)


class OpenedBundle:
    """A bundle whose manifest has been read (and its files checked) and its spec resolved."""

    def __init__(self, path, manifest: dict, spec, gated=()):
        self.path, self.manifest, self.spec = Path(path), manifest, spec
        self.gated = set(gated)  # formats whose model files have passed the gate

    @property
    def synthetic(self) -> bool:
        return self.manifest["synthetic"]

    @property
    def formats(self) -> list[str]:
        return list(self.manifest["formats"])

    def default_backend(self) -> str:
        """The backend to run this bundle with when none is named: its first format in
        formats.FASTEST_FIRST (lite runtimes before TensorFlow)."""
        return next(f for f in FASTEST_FIRST if f in self.formats)

    def check_backend(self, name: str, checkpoint=None):
        """A known backend; a bundle backend needs its format in the bundle and no
        checkpoint."""
        check_backend_name(name)
        if name not in FORMAT_OF_BACKEND:
            return
        if checkpoint:
            raise BundleError(f"--checkpoint is for the tf and torch backends, not {name}")
        if FORMAT_OF_BACKEND[name] not in self.formats:
            raise BundleError(f"{self.path}: has no {name} artifacts (it has: "
                              f"{', '.join(self.formats) or 'none'})")

    def gate(self, formats) -> None:
        """Every model file of `formats` through the gate (bundle.models_check), each format
        once: a command gates what its runtimes will parse, verify every format."""
        for fmt in formats:
            if fmt not in self.gated:
                check_format(self.path, self.spec, fmt)
                self.gated.add(fmt)

    def load_checkpoint(self, given=None):
        """The checkpoint the bundle was built from (`given`: a path or a Checkpoint;
        default: the manifest's), refused unless its weights are the manifest's."""
        from ..checkpoint import CheckpointError, weights_sha256
        try:
            if given is None or isinstance(given, (str, Path)):
                given = find_checkpoint(self.manifest, self.spec, given)
            checkpoint = _loaded(given, self.spec)
        except (CheckpointError, OSError) as exc:
            raise BundleError(one_line(exc)) from None
        if weights_sha256(checkpoint) != self.manifest["checkpoint"]["weights_sha256"]:
            raise BundleError(f"{checkpoint.path}: its weights are not the ones this bundle "
                              f"was built from")
        return checkpoint

    def backend(self, name: str, checkpoint=None, threads=None):
        """The named backend: the bundle's artifacts, or (tf, torch) the checkpoint it was
        built from, checked against the manifest's weight hashes."""
        self.check_backend(name, checkpoint)
        if name in FORMAT_OF_BACKEND:
            self.gate([FORMAT_OF_BACKEND[name]])  # no runtime is the first to parse a file
            return open_backend(name, self.spec, bundle=self.path, threads=threads)
        return open_backend(name, self.spec, checkpoint=self.load_checkpoint(checkpoint),
                            threads=threads)


def open_bundle(path, *, check: bool = True) -> OpenedBundle:
    """A bundle's manifest (validated, consistent) and spec; with `check`, its files must
    match the manifest (sizes and sha256; nothing else in it, no link) and each artifact's
    metadata the bundle, else a BundleError naming the problem. A format's model files pass
    the gate when its backend is opened (OpenedBundle.gate: on a vox bundle the TFLite
    variants alone cost seconds, so a command gates only what it runs)."""
    path = Path(path)
    manifest, spec = checked_manifest(path)
    if check:
        problems = check_files(path, manifest)
        if problems:
            raise BundleError(f"{path}: does not verify ({len(problems)} file problem(s): "
                              + "; ".join(problems) + ")")
        check_artifacts(path, manifest, spec)
    return OpenedBundle(path, manifest, spec)
