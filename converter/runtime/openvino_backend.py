"""A bundle's ONNX files (DIR/onnx/*.onnx) run in OpenVINO's CPU plugin, as Intel-CPU users
run them; imports neither torch nor tensorflow (nor onnx)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov

from ..families import family_of
from ..formats import onnx_files
from .base import SpecBackend, check_inputs, onnx_folder

# On CPUs with AVX512-BF16 the plugin's default precision is bf16 (errors 1e-2..5e-2 on
# these models): float32 is asked for explicitly. One stream, lowest latency per call.
PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def _reason(exc: BaseException) -> str:
    """OpenVINO's messages are a stack of 'Exception from src/...' lines; the last line
    is the reason."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _compiled(core: ov.Core, path: Path, properties: dict):
    """A compiled model; a file OpenVINO cannot read or compile is a one-line RuntimeError
    naming it."""
    try:
        model = core.read_model(str(path))
    except RuntimeError as exc:
        raise RuntimeError(f"{path}: OpenVINO cannot read it ({_reason(exc)})") from None
    try:
        return core.compile_model(model, "CPU", properties)
    except RuntimeError as exc:
        raise RuntimeError(f"{path}: OpenVINO cannot compile it ({_reason(exc)})") from None


def _names(ports, names, path: Path) -> list[str]:
    """The signature name of each port: OpenVINO gives a port every tensor name it merged
    into it (a flag input is also '/process/Cast_output_0'), so get_any_name() may be
    another."""
    out = []
    for port in ports:
        found = sorted(port.get_names() & set(names))
        if len(found) != 1:
            raise RuntimeError(f"{path}: a tensor named {sorted(port.get_names())}, not one "
                               f"of its signature's {list(names)}")
        out.append(found[0])
    return out


class OpenVINOBackend(SpecBackend):
    def __init__(self, spec, bundle, threads: int | None = None):
        super().__init__(spec)
        root = onnx_folder(bundle, spec)
        properties = dict(PROPERTIES)
        if threads:
            properties["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        contracts = family_of(spec).signatures(spec)
        self.files = onnx_files(family_of(spec))
        self.paths = {key: root / name for key, name in self.files.items()}
        # (model, signature) -> (infer request, its input names, its output names)
        self.models = {}
        for (model, signature), path in self.paths.items():
            request = _compiled(core, path, properties).create_infer_request()
            contract = contracts[model][signature]
            self.models[model, signature] = (
                request, _names(request.model_inputs, contract.input_names, path),
                _names(request.model_outputs, contract.output_names, path))

    def call(self, model, signature, inputs):
        request, names, outputs = self.models[model, signature]
        check_inputs(self.files[model, signature], names, inputs)
        # asarray, not ascontiguousarray: that makes the rank-0 flags rank 1.
        feed = {n: np.asarray(inputs[n], np.float32, order="C") for n in names}
        try:
            results = request.infer(feed)  # copies the outputs out of the request
        except RuntimeError as exc:
            raise RuntimeError(f"{self.paths[model, signature]}: OpenVINO failed "
                               f"({_reason(exc)})") from None
        return {name: results[port] for port, name in zip(request.model_outputs, outputs)}
