"""fomm-convert: First Order Motion Model checkpoints to verified deployment artifacts."""
import os
from importlib.metadata import PackageNotFoundError, version

# TensorFlow's oneDNN convolutions are about 4x less accurate than its Eigen ones on wide
# layers (vox-256 keypoints: 3.1e-5 vs 8.9e-6 from a float64 run), which is the whole
# keypoint budget. The converter wants exactness; the fast path is TFLite. Set before any
# import of tensorflow; an explicit setting by the user wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# TensorFlow's C++ INFO/WARNING lines (loader chatter, CPU feature notes) would bury the
# converter's own progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    __version__ = version("fomm-convert")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
