"""A TFLite file compiled for the CPU (XNNPACK) by LiteRT's C API, run by signature.

The C API is libLiteRt.so in the ai-edge-litert wheel (litert_library.py loads it, once
checked to be the pinned version's), called through ctypes, which releases the GIL during
each call. The wheel's Python classes fall short twice: its Interpreter packs XNNPACK's
weights once per signature and cannot turn XNNPACK's weight cache on (the generator's
generate and serving_default share their weights: vox-256 float32 held 791 MB of packed
weights for 347 MB of files), and its CompiledModel, which can, holds the GIL through
every run, stalling animate's decoding and encoding threads. Here the weight cache lives
in memory (a memory file), so a weight that signatures share is packed once (346 MB).

The runtime writes each output straight into an array of ours, sized from the contract:
a file is run only once bundle/models_check has proven its output shapes (the caller's
part), each output array ends at a no-access page (guarded.py), and the runtime's own
output shapes are compared with the contract before the arrays are bound and after the
run.
"""
from __future__ import annotations

import ctypes
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .guarded import ALIGNMENT, guarded_empty
from .litert_library import (CPU, FLOAT32, NOTHING_TO_FREE, H, Layout, LiteRtError,
                             RankedTensorType, check, runtime)

__all__ = ["CompiledModel", "LiteRtError", "DeclaredSignature", "aligned_empty"]

# XNNPACK's weight cache in an anonymous memory file: nothing is written to disk.
_WEIGHT_CACHE = ":memory"
# XNNPACK's flags replace the build's defaults: QS8 | QU8 (those defaults: the same
# outputs and memory as no flags) | TRANSIENT_INDIRECTION_BUFFER, which builds each
# convolution's indirection buffer per run instead of keeping one per layer (vox-256
# float32: 101 MB less, the same bytes out, no measurable time).
_XNNPACK_FLAGS = 0x1 | 0x2 | 0x20
_size, _cstr = ctypes.c_size_t, ctypes.c_char_p
# LiteRT's runtime options travel as TOML text under this name (its
# LiteRtRuntimeOptionsT::Identifier in the pinned version).
_RUNTIME_OPTIONS, _PROFILING = b"runtime_options_string", b"enable_profiling = true\n"


@dataclass(frozen=True)
class DeclaredSignature:
    """A signature's index and its tensors' declared shapes by name, in the runtime's
    order (-1: a dimension set by the inputs, e.g. a dynamic batch)."""
    index: int
    inputs: dict[str, tuple]
    outputs: dict[str, tuple]


def aligned_empty(shape) -> np.ndarray:
    """An uninitialised float32 array whose data starts on an ALIGNMENT boundary."""
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count + ALIGNMENT // 4, np.float32)
    start = (-raw.ctypes.data % ALIGNMENT) // 4
    return raw[start:start + count].reshape(shape)


class CompiledModel:
    """One .tflite file compiled for the CPU with `threads` threads (None: the runtime's
    choice). run() takes and gives float32 arrays by name; inputs are resized to each
    call's shapes (when they changed), so any batch the file allows works. With
    `profile`, the runtime times each op (start_profile, profile_summary)."""

    def __init__(self, path, threads: int | None = None, profile: bool = False):
        lib, environment = runtime()
        self.lib, self.path = lib, Path(path)
        self._model, self._options, self._compiled = H(), H(), H()
        # Destroyed in this order when the object goes (or at exit): the compiled model
        # uses the model and its options.
        self._finalizer = weakref.finalize(self, _destroy, lib, self._compiled,
                                           self._options, self._model)
        check(lib.LiteRtCreateModelFromFile(environment, str(self.path).encode(),
                                            ctypes.byref(self._model)), "reading the model")
        self.signatures = self._read_signatures()
        settings = f'weight_cache_file_path = "{_WEIGHT_CACHE}"\nflags = {_XNNPACK_FLAGS}\n'
        if threads:
            settings += f"num_threads = {int(threads)}\n"
        self._settings = ctypes.create_string_buffer(settings.encode())  # kept: not copied
        cpu = H()
        check(lib.LiteRtCreateOptions(ctypes.byref(self._options)), "creating options")
        check(lib.LiteRtSetOptionsHardwareAccelerators(self._options, CPU), "options")
        check(lib.LiteRtCreateOpaqueOptions(b"xnnpack",
                                            ctypes.cast(self._settings, ctypes.c_void_p),
                                            NOTHING_TO_FREE, ctypes.byref(cpu)), "CPU options")
        check(lib.LiteRtAddOpaqueOptions(self._options, cpu), "CPU options")
        if profile:
            self._add_runtime_options(_PROFILING)
        check(lib.LiteRtCreateCompiledModel(environment, self._model, self._options,
                                            ctypes.byref(self._compiled)), "compiling")
        self._shapes = {}  # signature -> the input shapes it is resized to
        # signature -> its outputs' shapes as the runtime holds them (declared until run)
        self._held = {key: [tuple(max(d, 1) for d in shape) for shape in s.outputs.values()]
                      for key, s in self.signatures.items()}

    def _add_runtime_options(self, text: bytes):
        payload = ctypes.create_string_buffer(text)
        self._runtime_settings = payload  # kept: the runtime reads it when compiling
        handle = H()
        check(self.lib.LiteRtCreateOpaqueOptions(_RUNTIME_OPTIONS,
                                                 ctypes.cast(payload, ctypes.c_void_p),
                                                 NOTHING_TO_FREE, ctypes.byref(handle)),
              "runtime options")
        check(self.lib.LiteRtAddOpaqueOptions(self._options, handle), "runtime options")

    def start_profile(self):
        """Clear the profiler of a model made with `profile` and record from here on."""
        profiler = self._profiler()
        check(self.lib.LiteRtResetProfiler(profiler), "resetting the profiler")
        check(self.lib.LiteRtStartProfiler(profiler), "starting the profiler")

    def profile_summary(self) -> str:
        """Stop the profiler: LiteRT's per-op summary of the runs since start_profile (the
        tables of TFLite's benchmark_model: run order, top ops, by node type)."""
        profiler, text = self._profiler(), ctypes.c_void_p()
        check(self.lib.LiteRtStopProfiler(profiler), "stopping the profiler")
        check(self.lib.LiteRtGetProfileSummary(profiler, self._compiled, ctypes.byref(text)),
              "the profile summary")
        try:
            return ctypes.string_at(text).decode()
        finally:
            _libc_free(text)

    def _profiler(self):
        profiler = H()
        check(self.lib.LiteRtCompiledModelGetProfiler(self._compiled, ctypes.byref(profiler)),
              f"{self.path.name}: its profiler")
        if not profiler:
            raise LiteRtError(f"{self.path.name}: no profiler (compiled without profile=True)")
        return profiler

    def _read_signatures(self) -> dict[str, DeclaredSignature]:
        lib, count = self.lib, _size()
        check(lib.LiteRtGetNumModelSignatures(self._model, ctypes.byref(count)), "signatures")
        found = {}
        for index in range(count.value):
            signature, key = H(), _cstr()
            check(lib.LiteRtGetModelSignature(self._model, index, ctypes.byref(signature)),
                  "signatures")
            check(lib.LiteRtGetSignatureKey(signature, ctypes.byref(key)), "signatures")
            names = {}
            for side, number, name_of, tensor_of in (
                    ("input", lib.LiteRtGetNumSignatureInputs, lib.LiteRtGetSignatureInputName,
                     lib.LiteRtGetSignatureInputTensorByIndex),
                    ("output", lib.LiteRtGetNumSignatureOutputs, lib.LiteRtGetSignatureOutputName,
                     lib.LiteRtGetSignatureOutputTensorByIndex)):
                n = _size()
                check(number(signature, ctypes.byref(n)), "signatures")
                names[side] = {}
                for i in range(n.value):
                    name, tensor, kind = _cstr(), H(), RankedTensorType()
                    check(name_of(signature, i, ctypes.byref(name)), "signatures")
                    check(tensor_of(signature, i, ctypes.byref(tensor)), "signatures")
                    check(lib.LiteRtGetRankedTensorType(tensor, ctypes.byref(kind)),
                          f"{key.value.decode()} {side} {name.value.decode()}")
                    if kind.element_type != FLOAT32:
                        raise LiteRtError(f"{key.value.decode()} {side} {name.value.decode()} "
                                          f"is not float32")
                    names[side][name.value.decode()] = kind.layout.shape()
            found[key.value.decode()] = DeclaredSignature(index, names["input"], names["output"])
        return found

    def run(self, key: str, inputs: dict, output_shapes: dict) -> dict:
        """The outputs of signature `key` for `inputs` (float32 arrays by input name),
        written into arrays of `output_shapes` (by output name), the contract's: a
        dynamic graph's output shapes are only known to the runtime once it has run, and
        it writes a dynamic output wherever it is told. So each array ends at a guard
        page; a shape that contradicts the file's declaration is refused before the run;
        after a resize, the runtime's own output shapes must be the contract's (or, for
        an output it shapes only while running, the shape it still holds from before),
        and after the run, the contract's."""
        signature = self.signatures[key]
        args = [self._aligned(inputs[name]) for name in signature.inputs]
        shapes = tuple(a.shape for a in args)
        wanted = []
        for name, declared in signature.outputs.items():
            shape = tuple(output_shapes[name])
            if not _fits(shape, declared):
                raise LiteRtError(f"{key} output {name}: {list(shape)} is not of the declared "
                                  f"shape {list(declared)}")
            wanted.append(shape)
        held = self._held[key]
        if self._shapes.get(key) != shapes:
            self._shapes.pop(key, None)
            self._resize(signature, args)
            held = self._before_binding(key, signature, wanted)
            self._shapes[key] = shapes  # checked: the next call of these shapes needs no check
        # The runtime checks each array against the size it holds for its tensor, which
        # for an output shaped while running is the previous run's until it runs.
        outputs = [guarded_empty(shape, max(_count(shape), _count(before)))
                   for shape, before in zip(wanted, held)]
        buffers = []
        try:
            for array in args:
                buffers.append(self._buffer(array, array.size))
            for array, before in zip(outputs, held):
                buffers.append(self._buffer(array, max(array.size, _count(before))))
            count = len(args)
            check(self.lib.LiteRtRunCompiledModel(
                self._compiled, signature.index, count, (H * count)(*buffers[:count]),
                len(outputs), (H * len(outputs))(*buffers[count:])), f"running {key}")
        finally:
            for buffer in buffers:
                self.lib.LiteRtDestroyTensorBuffer(buffer)
        made = self._layouts(signature, update=False)
        self._held[key] = made
        for name, array, shape in zip(signature.outputs, outputs, made):
            if array.shape != shape:
                raise LiteRtError(f"{key} output {name}: the run made {list(shape)}, not "
                                  f"{list(array.shape)}")
        return dict(zip(signature.outputs, outputs))

    def _before_binding(self, key: str, signature: DeclaredSignature, wanted: list) -> list:
        """The output shapes the runtime allocates for after a resize: each the contract's,
        or still the one it held (an output shaped only while running, behind an op
        whose shape is computed: LiteRT reports it as it was)."""
        now = self._layouts(signature, update=True)
        for name, shape, held, found in zip(signature.outputs, wanted, self._held[key], now):
            if found != shape and found != held:
                raise LiteRtError(f"{key} output {name}: the runtime allocates {list(found)} "
                                  f"for it, not {list(shape)}")
        return now

    def _resize(self, signature: DeclaredSignature, args):
        for index, (name, array) in enumerate(zip(signature.inputs, args)):
            if not array.ndim:
                continue  # a scalar (the flags) has nothing to resize, and LiteRT refuses
            dims = (ctypes.c_int * array.ndim)(*array.shape)
            check(self.lib.LiteRtCompiledModelResizeInputTensor(
                self._compiled, signature.index, index, dims, array.ndim),
                f"resizing {name} to {list(array.shape)}")

    def _layouts(self, signature: DeclaredSignature, update: bool) -> list[tuple]:
        """The output shapes the runtime holds (update: after allocating for the inputs'
        current shapes)."""
        layouts = (Layout * len(signature.outputs))()
        check(self.lib.LiteRtGetCompiledModelOutputTensorLayouts(
            self._compiled, signature.index, len(layouts), layouts, update), "output shapes")
        return [layout.shape() for layout in layouts]

    @staticmethod
    def _aligned(value) -> np.ndarray:
        array = np.asarray(value, np.float32)
        if array.flags.c_contiguous and array.ctypes.data % ALIGNMENT == 0:
            return array
        copy = aligned_empty(array.shape)
        copy[...] = array
        return copy

    def _buffer(self, array: np.ndarray, capacity: int):
        """A tensor buffer over `array`, whose memory holds `capacity` float32 values."""
        kind = RankedTensorType(FLOAT32)
        kind.layout.bits = array.ndim
        kind.layout.dimensions[:array.ndim] = array.shape
        buffer = H()
        check(self.lib.LiteRtCreateTensorBufferFromHostMemory(
            ctypes.byref(kind), array.ctypes.data, max(capacity * 4, 4), NOTHING_TO_FREE,
            ctypes.byref(buffer)), "a tensor buffer")
        return buffer

    def close(self):
        self._finalizer()


def _count(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _fits(shape: tuple, declared: tuple) -> bool:
    return len(shape) == len(declared) and all(d in (-1, n) for n, d in zip(shape, declared))


def _libc_free(pointer):
    """free() of the C library, for the strings LiteRT hands over with malloc."""
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(pointer)


def _destroy(lib, compiled, options, model):
    if compiled:
        lib.LiteRtDestroyCompiledModel(compiled)
    if options:
        lib.LiteRtDestroyOptions(options)
    if model:
        lib.LiteRtDestroyModel(model)
