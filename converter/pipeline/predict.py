"""The oracle contract: run one backend on an oracle-style NPZ, write the oracle's arrays.

Inputs `source` (1, C, H, W) and `driving` (N, C, H, W), float32 in [0, 1], NCHW as the
original's tensors; outputs use the oracle's names, shapes and layouts, so any backend can
be compared with the original implementation by a few lines of numpy. Which arrays is
the model family's (its package's `predict` module); FOMM's, the arrays of
../shared/oracle, are predict() here.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import FommError, cut, one_line
from ..families import family_of
from ..hull import movement_scale
from ..io import output_lock, refuse_replacing, write_atomic
from ..keypoints import detect_frames
from ..limits import MAX_INPUT_BYTES
from ..media.pixels import check_unit_floats

# Backend output layout (NHWC family) -> oracle layout (NCHW family).
TO_ORACLE = {"prediction": (0, 3, 1, 2), "deformed": (0, 3, 1, 2), "mask": (0, 3, 1, 2),
             "occlusion_map": (0, 3, 1, 2), "deformation": (0, 1, 2, 3),
             "sparse_deformed": (0, 1, 4, 2, 3)}
NORMALISATIONS = [(rel, adapt) for rel in (1, 0) for adapt in (1, 0)]


class InputsError(FommError):
    """An inputs NPZ that is not the oracle's contract."""


def read_inputs(path: Path, frame_shape) -> tuple[np.ndarray, np.ndarray]:
    """source (1, H, W, C) and driving (N, H, W, C), checked against the model's frame.

    The file is an input like any other: each member's .npy header (dtype, shape, bytes)
    is checked against the contract and limits.MAX_INPUT_BYTES before its data is read,
    and the arrays must be float32, finite and in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise InputsError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic:
        raise InputsError(f"{path}: is empty (0 bytes), not an .npz")
    if magic == b"\x93NUMPY":
        raise InputsError(f"{path}: a .npy array, not an .npz: save both with "
                          f"numpy.savez(path, source=..., driving=...)")
    if not zipfile.is_zipfile(path):
        raise InputsError(f"{path}: not an .npz (a zip of .npy arrays)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name: _member(path, archive, name) for name in ("source", "driving")}
            headers = {name: _header(path, archive, info, name)
                       for name, info in members.items()}
            total = sum(header[2] for header in headers.values())
            if total > MAX_INPUT_BYTES:
                raise InputsError(f"{path}: its arrays declare {total} bytes, more than the "
                                  f"{MAX_INPUT_BYTES} an inputs file may hold")
            for name, (shape, _, _) in headers.items():
                _check_shape(path, name, shape, frame_shape)
            arrays = {name: _read(archive, info) for name, info in members.items()}
    except InputsError:
        raise
    except Exception as exc:  # zipfile and numpy raise many types for a damaged file
        raise InputsError(f"{path}: not a readable .npz ({one_line(exc)})") from None
    for name, a in arrays.items():
        check_unit_floats(f"{path}: '{name}'", a, InputsError)
    return tuple(np.ascontiguousarray(arrays[k].astype(np.float32).transpose(0, 2, 3, 1))
                 for k in ("source", "driving"))


def _member(path, archive, name):
    for member in (f"{name}.npy", name):
        try:
            return archive.getinfo(member)
        except KeyError:
            pass
    raise InputsError(f"{path}: no '{name}' array")


def _header(path, archive, info, name):
    """(shape, dtype, data bytes) from a member's .npy header, checked before any data."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = read(f)
            start = f.tell()
        except ValueError as exc:
            raise InputsError(f"{path}: '{name}': not a .npy array ({one_line(exc)})") from None
    if dtype.kind != "f" or dtype.itemsize != 4:  # float32 of either byte order
        raise InputsError(f"{path}: '{name}' is {_dtype_name(dtype)}; inputs are float32")
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size > MAX_INPUT_BYTES:
        raise InputsError(f"{path}: '{name}' declares {size} bytes, more than the "
                          f"{MAX_INPUT_BYTES} an inputs file may hold")
    if size != info.file_size - start:
        raise InputsError(f"{path}: '{name}' declares {size} bytes, the file holds "
                          f"{info.file_size - start}")
    return shape, dtype, size


def _dtype_name(dtype) -> str:
    if dtype.hasobject:
        return "an object (pickled) array"
    return cut(dtype)  # a structured dtype can be long


def _check_shape(path, name, shape, frame_shape):
    h, w, c = frame_shape
    lead = 1 if name == "source" else None
    if len(shape) != 4 or tuple(shape[1:]) != (c, h, w) or (lead and shape[0] != lead) \
            or shape[0] < 1:
        want = f"({lead or 'N'}, {c}, {h}, {w})"
        got = tuple(shape) if len(shape) <= 8 else f"of {len(shape)} dimensions"
        raise InputsError(f"{path}: '{name}' has shape {got}, expected {want}")


def _read(archive, info) -> np.ndarray:
    with archive.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def predict(backend, source: np.ndarray, driving: np.ndarray, batch_size: int = 4,
            positions=None) -> dict:
    """Every oracle array for one source (1, H, W, C) and N driving frames (N, H, W, C).

    `positions` restricts the generator to those driving rows (all by default).
    """
    out = {}
    kp_source = backend.kp_detector(source)
    kp_driving = detect_frames(backend, driving)  # per frame, as the original demo
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
    write_atomic(path, writer=lambda f: np.savez(f, **arrays), suffix=".npz")


# The spec fields that decide what the models compute: a config must agree on them with
# the bundle it is run with (name, checkpoint file and default normalisation need not).
# A family's spec holds those it has (TPSMM's no grid_sample_align_corners: always True).
COMPUTING_FIELDS = ("family", "frame_shape", "grid_sample_align_corners", "model_params")


def resolve_spec(config=None, bundle=None, align_corners=None):
    """(spec, opened bundle or None): the config's spec, else the bundle's manifest's; with
    both, they must agree (a one-line BundleError naming both)."""
    from ..bundle.manifest import BundleError
    from ..bundle.open import open_bundle
    from ..spec import load_spec

    if config is None and bundle is None:
        raise BundleError("predict needs --config or --bundle (or both)")
    opened = open_bundle(bundle) if bundle is not None else None
    spec = load_spec(config) if config is not None else opened.spec
    if align_corners is not None:
        spec = spec.with_align_corners(align_corners)
    if opened is not None:
        ours, theirs = spec.to_dict(), opened.spec.to_dict()
        differ = [field for field in COMPUTING_FIELDS if ours.get(field) != theirs.get(field)]
        if differ:
            given = config if config is not None else "--align-corners"
            raise BundleError(f"{given}: disagrees with the spec of the bundle {bundle} "
                              f"({', '.join(differ)} differ)")
    return spec, opened


def predict_file(config, inputs: Path, out: Path, backend: str | None, *, checkpoint=None,
                 bundle=None, align_corners=None, batch_size: int | None = None,
                 positions=None, force: bool = False):
    """predict() from an inputs NPZ into an output NPZ; returns (arrays, driving frames,
    the backend's name).

    The spec is the config's, else the bundle's (resolve_spec); batch_size None is the
    family's predict's default; the backend, when None, is
    the bundle's default (OpenedBundle.default_backend), else (or with a checkpoint) torch.
    An existing `out` is replaced only with `force`; a second predict into the same `out`
    fails at once."""
    from ..bundle.open import check_backend_name

    if backend is not None:
        check_backend_name(backend)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out, "predict"):
        refuse_replacing(out, force)
        return _predict_file(config, inputs, out, backend, checkpoint, bundle, align_corners,
                             batch_size, positions)


def _predict_file(config, inputs, out, backend, checkpoint, bundle, align_corners,
                  batch_size, positions):
    from ..bundle.open import open_backend

    spec, opened = resolve_spec(config, bundle, align_corners)
    if backend is None:  # a checkpoint given is one to run
        backend = "torch" if opened is None or checkpoint else opened.default_backend()
    if opened is not None:
        opened.check_backend(backend, checkpoint)
    source, driving = read_inputs(inputs, spec.frame_shape)
    if positions is not None and not all(0 <= i < len(driving) for i in positions):
        raise InputsError(f"--gen-frames: rows must be in 0..{len(driving) - 1}")
    if opened is None:
        runner = open_backend(backend, spec, checkpoint=checkpoint)
    else:
        runner = opened.backend(backend, checkpoint)
    chunk = {} if batch_size is None else {"batch_size": batch_size}
    arrays = family_of(spec).facet("predict").predict(runner, source, driving,
                                                      positions=positions, **chunk)
    write_npz(out, arrays)
    return arrays, len(driving), backend
