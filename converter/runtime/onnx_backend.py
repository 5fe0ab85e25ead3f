"""A bundle's ONNX files (DIR/onnx/*.onnx) run with onnxruntime; imports neither torch nor
tensorflow."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import one_line
from ..families import family_of
from ..formats import onnx_files
from .base import SpecBackend, check_inputs, onnx_folder


def _session(path: Path, options):
    """An InferenceSession; onnxruntime's own exceptions (a junk file, external data outside
    the folder, ...) become one-line RuntimeErrors naming the file."""
    try:
        return ort.InferenceSession(str(path), sess_options=options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's error classes derive from Exception only
        if not type(exc).__module__.startswith("onnxruntime"):
            raise
        raise RuntimeError(f"{path}: onnxruntime cannot load it "
                           f"({one_line(exc)})") from None


class ONNXBackend(SpecBackend):
    def __init__(self, spec, bundle, threads: int | None = None):
        super().__init__(spec)
        root = onnx_folder(bundle, spec)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        # Five sessions run in turn; spinning idle threads of one would take the cores from
        # the next (kp_detector 38-41 ms with spinning, 21 ms without, vox at 2 threads).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.files = onnx_files(family_of(spec))
        self.sessions = {key: _session(root / name, options) for key, name in self.files.items()}

    def call(self, model, signature, inputs):
        session = self.sessions[model, signature]
        names = [i.name for i in session.get_inputs()]
        check_inputs(self.files[model, signature], names, inputs)
        feed = {n: np.ascontiguousarray(inputs[n], dtype=np.float32) for n in names}
        outputs = [o.name for o in session.get_outputs()]
        return dict(zip(outputs, session.run(outputs, feed)))
