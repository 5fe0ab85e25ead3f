"""Which extra of the package brings each optional import (pyproject.toml's
[project.optional-dependencies]), so that a command or backend run without it says in one
line what to install instead of ending in a ModuleNotFoundError traceback."""
from __future__ import annotations

from contextlib import contextmanager

from .errors import FommError

# Top-level import name -> the extra that installs it.
EXTRA_OF_MODULE = {
    **dict.fromkeys(("torch", "tensorflow", "onnx", "tf_keras", "keras"), "convert"),
    **dict.fromkeys(("ai_edge_litert", "onnxruntime", "openvino", "imageio", "imageio_ffmpeg",
                     "PIL", "flatbuffers"), "lite"),
    "matplotlib": "plot",
    **dict.fromkeys(("scipy", "skimage", "pytest"), "dev"),
    "ray": "ray",
    "executorch": "executorch",
}


# Loggers of an extra's packages that warn on every import about what this CPU-only use
# never needs (torchao: its CUDA kernels and triton, torch's pytree: an API it deprecates).
QUIET_LOGGERS = {"executorch": ("torchao", "torch.utils._pytree")}


def quiet_imports(extra: str) -> None:
    """Only errors from the loggers of an extra's packages (QUIET_LOGGERS)."""
    import logging
    for name in QUIET_LOGGERS[extra]:
        logging.getLogger(name).setLevel(logging.ERROR)


class MissingExtra(FommError):
    """An optional package a command or backend needs is not installed."""


def missing_extra(exc: ImportError, what: str) -> MissingExtra | None:
    """`exc` as one line naming `what` needed it and the extra to install; None when the
    missing module is none of the extras' (a bug, not a missing install)."""
    module = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return MissingExtra(f"{what} needs {module}, which is not installed: "
                        f"pip install 'fomm-convert[{extra}]'")


@contextmanager
def extras_named(what: str):
    """Turn a missing optional module inside the block into MissingExtra."""
    try:
        yield
    except ImportError as exc:
        error = missing_extra(exc, what)
        if error is None:
            raise
        raise error from None
