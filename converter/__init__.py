"""fomm-convert: First Order Motion Model checkpoints to verified deployment artifacts."""
import os

# TensorFlow's oneDNN convolutions put vox-256 keypoints past the keypoint tolerance, its
# Eigen ones at the original's own level (the figures:
# docs/performance.md, "Keypoints and oneDNN"). The converter wants exactness; the fast path
# is TFLite. Set before any import of tensorflow; an explicit setting by the user wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# TensorFlow's C++ INFO/WARNING lines (loader chatter, CPU feature notes) would bury the
# converter's own progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .version import __version__  # noqa: E402

# The public API (README, "Python API"), imported on first use: `import fomm_convert`
# loads no framework.
_API = ("build", "verify", "open_bundle", "Bundle", "animate", "reconstruct", "animate_many")
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
