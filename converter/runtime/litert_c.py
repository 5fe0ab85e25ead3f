"""A TFLite file compiled for the CPU (XNNPACK) by LiteRT's C API, run by signature.

The C API is libLiteRt.so in the ai-edge-litert wheel (the version pinned in
pyproject.toml), called through ctypes, which releases the GIL during each call. The
wheel's Python classes fall short twice: its Interpreter packs XNNPACK's weights once per
signature and cannot turn XNNPACK's weight cache on (the generator's generate and
serving_default share their weights: vox-256 float32 held 791 MB of packed weights for
347 MB of files), and its CompiledModel, which can, holds the GIL through every run,
stalling animate's decoding and encoding threads. Here the weight cache lives in memory
(a memory file), so a weight that signatures share is packed once (346 MB).

The structs are the C API's; its headers pin their sizes (static_asserts in
litert_layout.h, litert_model_types.h, litert_any.h, litert_environment_options.h), and
the assert below checks that ctypes lays them out alike.
"""
from __future__ import annotations

import ctypes
import importlib.util
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_H = ctypes.c_void_p  # every LiteRt* handle
_MAX_RANK = 8
_FLOAT32 = 1  # kLiteRtElementTypeFloat32
_CPU = 1  # kLiteRtHwAcceleratorCpu
_ANY_INT = 2  # kLiteRtAnyTypeInt
_AUTO_REGISTER_ACCELERATORS = 24  # kLiteRtEnvOptionTagAutoRegisterAccelerators
_MIN_LOGGER_SEVERITY = 25  # kLiteRtEnvOptionTagMinLoggerSeverity
_ERROR = 3  # kLiteRtLogSeverityError: its INFO lines (a dozen per model) are not ours to print
_ALIGNMENT = 64  # host buffers start on this boundary (the runtime's requirement)
# XNNPACK's weight cache in an anonymous memory file: nothing is written to disk.
_WEIGHT_CACHE = ":memory"
# XNNPACK's flags replace the build's defaults: QS8 | QU8 (those defaults: the same
# outputs and memory as no flags) | TRANSIENT_INDIRECTION_BUFFER, which builds each
# convolution's indirection buffer per run instead of keeping one per layer (vox-256
# float32: 101 MB less, the same bytes out, no measurable time).
_XNNPACK_FLAGS = 0x1 | 0x2 | 0x20
_STATUS = {1: "invalid argument", 2: "memory allocation failure", 3: "runtime failure",
           4: "missing input tensor", 5: "unsupported", 6: "not found", 9: "unknown error",
           500: "file I/O error", 501: "invalid flatbuffer", 504: "compilation failed"}


class _Any(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("value", ctypes.c_int64)]


class _EnvOption(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_int), ("value", _Any)]


class _Layout(ctypes.Structure):
    # rank: bits 0-6, has_strides: bit 7 of the first word.
    _fields_ = [("bits", ctypes.c_uint32), ("dimensions", ctypes.c_int32 * _MAX_RANK),
                ("strides", ctypes.c_uint32 * _MAX_RANK)]


class _RankedTensorType(ctypes.Structure):
    _fields_ = [("element_type", ctypes.c_int), ("layout", _Layout)]


assert (ctypes.sizeof(_Any), ctypes.sizeof(_EnvOption), ctypes.sizeof(_Layout),
        ctypes.sizeof(_RankedTensorType)) == (16, 24, 68, 72)

_size, _ptr, _cstr = ctypes.c_size_t, ctypes.POINTER, ctypes.c_char_p
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_PROTOTYPES = {
    "LiteRtCreateEnvironment": [ctypes.c_int, _ptr(_EnvOption), _ptr(_H)],
    "LiteRtCreateModelFromFile": [_H, _cstr, _ptr(_H)],
    "LiteRtDestroyModel": [_H],
    "LiteRtGetNumModelSignatures": [_H, _ptr(_size)],
    "LiteRtGetModelSignature": [_H, _size, _ptr(_H)],
    "LiteRtGetSignatureKey": [_H, _ptr(_cstr)],
    "LiteRtGetNumSignatureInputs": [_H, _ptr(_size)],
    "LiteRtGetNumSignatureOutputs": [_H, _ptr(_size)],
    "LiteRtGetSignatureInputName": [_H, _size, _ptr(_cstr)],
    "LiteRtGetSignatureOutputName": [_H, _size, _ptr(_cstr)],
    "LiteRtGetSignatureInputTensorByIndex": [_H, _size, _ptr(_H)],
    "LiteRtGetSignatureOutputTensorByIndex": [_H, _size, _ptr(_H)],
    "LiteRtGetRankedTensorType": [_H, _ptr(_RankedTensorType)],
    "LiteRtCreateOptions": [_ptr(_H)],
    "LiteRtDestroyOptions": [_H],
    "LiteRtSetOptionsHardwareAccelerators": [_H, ctypes.c_int],
    "LiteRtCreateOpaqueOptions": [_cstr, ctypes.c_void_p, _CALLBACK, _ptr(_H)],
    "LiteRtAddOpaqueOptions": [_H, _H],
    "LiteRtCreateCompiledModel": [_H, _H, _H, _ptr(_H)],
    "LiteRtDestroyCompiledModel": [_H],
    "LiteRtCompiledModelResizeInputTensor": [_H, _size, _size, _ptr(ctypes.c_int), _size],
    "LiteRtGetCompiledModelOutputTensorLayouts": [_H, _size, _size, _ptr(_Layout),
                                                  ctypes.c_bool],
    "LiteRtCreateTensorBufferFromHostMemory": [_ptr(_RankedTensorType), ctypes.c_void_p,
                                               _size, _CALLBACK, _ptr(_H)],
    "LiteRtDestroyTensorBuffer": [_H],
    "LiteRtRunCompiledModel": [_H, _size, _size, _ptr(_H), _size, _ptr(_H)],
}
_VOID = {"LiteRtDestroyModel", "LiteRtDestroyOptions", "LiteRtDestroyCompiledModel",
         "LiteRtDestroyTensorBuffer"}
# The runtime calls these on memory it does not own (our arrays, our option text).
_NOTHING_TO_FREE = _CALLBACK(lambda _: None)


class LiteRtError(RuntimeError):
    pass


def _library_path() -> Path:
    spec = importlib.util.find_spec("ai_edge_litert")  # its __init__ is not run
    if spec is None or not spec.submodule_search_locations:
        raise LiteRtError("ai-edge-litert is not installed (pip install ai-edge-litert)")
    return Path(list(spec.submodule_search_locations)[0]) / "libLiteRt.so"


_state = threading.Lock(), {}


def _runtime():
    """(the library with its prototypes, the process's environment), made once: the
    environment registers the CPU accelerator only (no GPU or NPU libraries are loaded)
    and logs errors only."""
    lock, made = _state
    with lock:
        if not made:
            lib = ctypes.CDLL(str(_library_path()))
            for name, args in _PROTOTYPES.items():
                function = getattr(lib, name)
                function.argtypes = args
                function.restype = None if name in _VOID else ctypes.c_int
            options = (_EnvOption * 2)(_EnvOption(_AUTO_REGISTER_ACCELERATORS, _Any(_ANY_INT, _CPU)),
                                       _EnvOption(_MIN_LOGGER_SEVERITY, _Any(_ANY_INT, _ERROR)))
            environment = _H()
            _check(lib.LiteRtCreateEnvironment(2, options, ctypes.byref(environment)),
                   "creating the environment")
            made.update(lib=lib, environment=environment)
        return made["lib"], made["environment"]


def _check(status: int, what: str):
    if status != 0:
        raise LiteRtError(f"{what}: {_STATUS.get(status, f'status {status}')}")


@dataclass(frozen=True)
class Signature:
    """A signature's index and its tensors' declared shapes by name, in the runtime's
    order (-1: a dimension set by the inputs, e.g. a dynamic batch)."""
    index: int
    inputs: dict[str, tuple]
    outputs: dict[str, tuple]


def aligned_empty(shape) -> np.ndarray:
    """An uninitialised float32 array whose data starts on an _ALIGNMENT boundary."""
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count + _ALIGNMENT // 4, np.float32)
    start = (-raw.ctypes.data % _ALIGNMENT) // 4
    return raw[start:start + count].reshape(shape)


class CompiledModel:
    """One .tflite file compiled for the CPU with `threads` threads (None: the runtime's
    choice). run() takes and gives float32 arrays by name; inputs are resized to each
    call's shapes (when they changed), so any batch the file allows works."""

    def __init__(self, path, threads: int | None = None):
        lib, environment = _runtime()
        self.lib, self.path = lib, Path(path)
        self._model, self._options, self._compiled = _H(), _H(), _H()
        # Destroyed in this order when the object goes (or at exit): the compiled model
        # uses the model and its options.
        self._finalizer = weakref.finalize(self, _destroy, lib, self._compiled,
                                           self._options, self._model)
        _check(lib.LiteRtCreateModelFromFile(environment, str(self.path).encode(),
                                             ctypes.byref(self._model)), "reading the model")
        self.signatures = self._read_signatures()
        settings = f'weight_cache_file_path = "{_WEIGHT_CACHE}"\nflags = {_XNNPACK_FLAGS}\n'
        if threads:
            settings += f"num_threads = {int(threads)}\n"
        self._settings = ctypes.create_string_buffer(settings.encode())  # kept: not copied
        cpu = _H()
        _check(lib.LiteRtCreateOptions(ctypes.byref(self._options)), "creating options")
        _check(lib.LiteRtSetOptionsHardwareAccelerators(self._options, _CPU), "options")
        _check(lib.LiteRtCreateOpaqueOptions(b"xnnpack", ctypes.cast(self._settings, ctypes.c_void_p),
                                             _NOTHING_TO_FREE, ctypes.byref(cpu)), "CPU options")
        _check(lib.LiteRtAddOpaqueOptions(self._options, cpu), "CPU options")
        _check(lib.LiteRtCreateCompiledModel(environment, self._model, self._options,
                                             ctypes.byref(self._compiled)), "compiling")
        self._shapes = {}  # signature -> the input shapes it is resized to

    def _read_signatures(self) -> dict[str, Signature]:
        lib, count = self.lib, _size()
        _check(lib.LiteRtGetNumModelSignatures(self._model, ctypes.byref(count)), "signatures")
        found = {}
        for index in range(count.value):
            signature, key = _H(), _cstr()
            _check(lib.LiteRtGetModelSignature(self._model, index, ctypes.byref(signature)),
                   "signatures")
            _check(lib.LiteRtGetSignatureKey(signature, ctypes.byref(key)), "signatures")
            names = {}
            for side, number, name_of, tensor_of in (
                    ("input", lib.LiteRtGetNumSignatureInputs, lib.LiteRtGetSignatureInputName,
                     lib.LiteRtGetSignatureInputTensorByIndex),
                    ("output", lib.LiteRtGetNumSignatureOutputs, lib.LiteRtGetSignatureOutputName,
                     lib.LiteRtGetSignatureOutputTensorByIndex)):
                n = _size()
                _check(number(signature, ctypes.byref(n)), "signatures")
                names[side] = {}
                for i in range(n.value):
                    name, tensor, kind = _cstr(), _H(), _RankedTensorType()
                    _check(name_of(signature, i, ctypes.byref(name)), "signatures")
                    _check(tensor_of(signature, i, ctypes.byref(tensor)), "signatures")
                    _check(lib.LiteRtGetRankedTensorType(tensor, ctypes.byref(kind)),
                           f"{key.value.decode()} {side} {name.value.decode()}")
                    if kind.element_type != _FLOAT32:
                        raise LiteRtError(f"{key.value.decode()} {side} {name.value.decode()} "
                                          f"is not float32")
                    layout = kind.layout
                    names[side][name.value.decode()] = tuple(layout.dimensions[:layout.bits & 0x7F])
            found[key.value.decode()] = Signature(index, names["input"], names["output"])
        return found

    def run(self, key: str, inputs: dict, output_shapes: dict) -> dict:
        """The outputs of signature `key` for `inputs` (float32 arrays by input name),
        written into arrays of `output_shapes` (by output name). The caller must know
        them: a dynamic graph's output shapes are only known to the runtime once it has
        run, and it writes a dynamic output wherever it is told, past the end of too
        small a buffer too. So a shape that contradicts the file's declaration is refused
        before the run, and one that differs from what the run made, after it."""
        signature = self.signatures[key]
        args = [self._aligned(inputs[name]) for name in signature.inputs]
        shapes = tuple(a.shape for a in args)
        if self._shapes.get(key) != shapes:
            self._resize(signature, args)
            self._shapes[key] = shapes
        outputs = []
        for name, declared in signature.outputs.items():
            shape = tuple(output_shapes[name])
            if not _fits(shape, declared):
                raise LiteRtError(f"{key} output {name}: {list(shape)} is not of the declared "
                                  f"shape {list(declared)}")
            outputs.append(aligned_empty(shape))
        buffers = []
        try:
            for array in args + outputs:
                buffers.append(self._buffer(array))
            count = len(args)
            _check(self.lib.LiteRtRunCompiledModel(
                self._compiled, signature.index, count, (_H * count)(*buffers[:count]),
                len(outputs), (_H * len(outputs))(*buffers[count:])), f"running {key}")
        finally:
            for buffer in buffers:
                self.lib.LiteRtDestroyTensorBuffer(buffer)
        made = self._output_shapes(signature)
        for name, array, shape in zip(signature.outputs, outputs, made):
            if array.shape != shape:
                raise LiteRtError(f"{key} output {name}: the run made {list(shape)}, not "
                                  f"{list(array.shape)}")
        return dict(zip(signature.outputs, outputs))

    def _resize(self, signature: Signature, args):
        for index, (name, array) in enumerate(zip(signature.inputs, args)):
            if not array.ndim:
                continue  # a scalar (the flags) has nothing to resize, and LiteRT refuses
            dims = (ctypes.c_int * array.ndim)(*array.shape)
            _check(self.lib.LiteRtCompiledModelResizeInputTensor(
                self._compiled, signature.index, index, dims, array.ndim),
                f"resizing {name} to {list(array.shape)}")

    def _output_shapes(self, signature: Signature) -> list[tuple]:
        layouts = (_Layout * len(signature.outputs))()
        _check(self.lib.LiteRtGetCompiledModelOutputTensorLayouts(
            self._compiled, signature.index, len(layouts), layouts, False), "output shapes")
        return [tuple(layout.dimensions[:layout.bits & 0x7F]) for layout in layouts]

    @staticmethod
    def _aligned(value) -> np.ndarray:
        array = np.asarray(value, np.float32)
        if array.flags.c_contiguous and array.ctypes.data % _ALIGNMENT == 0:
            return array
        copy = aligned_empty(array.shape)
        copy[...] = array
        return copy

    def _buffer(self, array: np.ndarray):
        kind = _RankedTensorType(_FLOAT32)
        kind.layout.bits = array.ndim
        kind.layout.dimensions[:array.ndim] = array.shape
        buffer = _H()
        _check(self.lib.LiteRtCreateTensorBufferFromHostMemory(
            ctypes.byref(kind), array.ctypes.data, max(array.nbytes, 4), _NOTHING_TO_FREE,
            ctypes.byref(buffer)), "a tensor buffer")
        return buffer

    def close(self):
        self._finalizer()


def _fits(shape: tuple, declared: tuple) -> bool:
    return len(shape) == len(declared) and all(d in (-1, n) for n, d in zip(shape, declared))


def _destroy(lib, compiled, options, model):
    if compiled:
        lib.LiteRtDestroyCompiledModel(compiled)
    if options:
        lib.LiteRtDestroyOptions(options)
    if model:
        lib.LiteRtDestroyModel(model)
