"""A bundle's ExecuTorch files (DIR/executorch/*.pte) in ExecuTorch's runtime (its Python
bindings: XNNPACK delegate, portable kernels for the rest), as PyTorch's on-device users run
them. The files take batch 1 (export/executorch.py): a call of N examples is N calls
(runtime.batching), as for the static TFLite files. ExecuTorch's bindings import torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import one_line
from ..extras import quiet_imports

quiet_imports("executorch")
from executorch.runtime import Runtime  # noqa: E402
from ..families import family_of
from ..formats import EXECUTORCH_FOLDER, executorch_files
from ..limits import TFLITE_MAX_CALL_BATCH
from .base import SpecBackend, check_inputs
from .batching import call_per_example, check_shapes


def _method(runtime: Runtime, path: Path):
    """The file's `forward`; a file the runtime cannot load is a one-line RuntimeError
    naming it."""
    try:
        return runtime.load_program(path).load_method("forward")
    except Exception as exc:  # the bindings raise RuntimeError and ValueError alike
        raise RuntimeError(f"{path}: ExecuTorch cannot load it ({one_line(exc)})") from None


class ExecuTorchBackend(SpecBackend):
    def __init__(self, spec, bundle, threads: int | None = None):
        super().__init__(spec)
        if threads:
            # The process's one pool, XNNPACK's (default: a thread per core); "unsafe" while
            # another method runs, which a backend's calls never overlap.
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
            _unsafe_reset_threadpool(int(threads))
        root = Path(bundle) / EXECUTORCH_FOLDER
        self.signatures = family_of(spec).signatures(spec)
        self.paths = {key: root / name for key, name in executorch_files(family_of(spec)).items()}
        missing = [p.name for p in self.paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{root}: missing {', '.join(missing)}")
        runtime = Runtime.get()
        self.methods = {key: _method(runtime, path) for key, path in self.paths.items()}

    def call(self, model, signature, inputs):
        contract = self.signatures[model][signature]
        path = self.paths[model, signature]
        check_inputs(path.name, contract.input_names, inputs)
        check_shapes(contract, inputs, TFLITE_MAX_CALL_BATCH)
        method = self.methods[model, signature]

        def run(args):
            feed = [torch.from_numpy(np.array(args[n], np.float32)) for n in contract.input_names]
            try:
                results = method.execute(feed)
            except Exception as exc:
                raise RuntimeError(f"{path}: ExecuTorch failed ({one_line(exc)})") from None
            return {name: result.numpy().copy()
                    for name, result in zip(contract.output_names, results)}
        return call_per_example(run, contract, inputs)
