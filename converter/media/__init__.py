"""Images and videos in and out, the way the original demo reads them, in numpy and imageio.

No torch, tensorflow, scipy or scikit-image here: this package is part of the lite runtime.

- `read_image` (images) and `resize_like_demo` (resize) reproduce
  `skimage.transform.resize(img, (H, W))[..., :3]` (scikit-image 0.26 defaults) on
  `imageio.imread(path)`, which is how upstream `demo.py` prepares its source image and
  every driving frame.
- `open_video` (video) streams a video's frames through imageio-ffmpeg, one at a time.
- `open_writer` (output) writes .mp4 (H.264, mp4), .gif (gif) or a directory of numbered
  lossless PNGs (png_dir), frame by frame, into a temporary file or directory beside the
  target that is renamed into place only when every frame is written (writer).
"""
from .errors import MediaError
from .gif import GIFWriter
from .images import IMAGE_SUFFIXES, load_image_array, read_image
from .mp4 import MP4Writer
from .output import VIDEO_SUFFIXES, open_writer, output_kind
from .pixels import as_float, as_float32, check_unit_floats, to_rgb, to_uint8
from .png_dir import FRAME_NAME, PNGDirWriter
from .resize import resize_like_demo, resize_matrix, resize_taps
from .video import VideoReader, open_video
from .writer import FrameWriter

__all__ = ["MediaError", "GIFWriter", "IMAGE_SUFFIXES", "load_image_array", "read_image",
           "MP4Writer", "VIDEO_SUFFIXES", "open_writer", "output_kind", "as_float", "as_float32",
           "to_rgb", "to_uint8", "FRAME_NAME", "PNGDirWriter", "resize_like_demo", "resize_matrix",
           "resize_taps", "VideoReader", "open_video", "FrameWriter"]
