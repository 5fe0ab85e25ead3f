"""LiteRT's C library (libLiteRt.so of the ai-edge-litert wheel), loaded once per process.

    lib, environment = runtime()

Its prototypes, struct layouts and option tags are those of the version pinned in
pyproject.toml and differ in others (2.1.4 takes no environment when reading a model file,
and read our environment handle as a file name). So before anything of the library is
loaded or called, the file must be one that the pinned ai-edge-litert distribution
installed: the distribution beside it whose RECORD lists it with its sha256, of the
version our own distribution's metadata requires (one home for the pin: pyproject.toml).
Anything else is one LiteRtError line naming both versions and the fix. Once loaded, the
struct layouts are checked against what the library makes of them (a tensor buffer's
packed size, an environment option read back): ctypes and the headers disagreeing is an
error, not garbage in a run.
"""
from __future__ import annotations

import base64
import ctypes
import hashlib
import importlib.metadata
import importlib.util
import re
import threading
from pathlib import Path

H = ctypes.c_void_p  # every LiteRt* handle
MAX_RANK = 8
FLOAT32 = 1  # kLiteRtElementTypeFloat32
CPU = 1  # kLiteRtHwAcceleratorCpu
_ANY_INT = 2  # kLiteRtAnyTypeInt
_AUTO_REGISTER_ACCELERATORS = 24  # kLiteRtEnvOptionTagAutoRegisterAccelerators
_MIN_LOGGER_SEVERITY = 25  # kLiteRtEnvOptionTagMinLoggerSeverity
_ERROR = 3  # kLiteRtLogSeverityError: its INFO lines (a dozen per model) are not ours to print
DISTRIBUTION, LIBRARY = "ai-edge-litert", "libLiteRt.so"
STATUS = {1: "invalid argument", 2: "memory allocation failure", 3: "runtime failure",
          4: "missing input tensor", 5: "unsupported", 6: "not found", 9: "unknown error",
          500: "file I/O error", 501: "invalid flatbuffer", 504: "compilation failed"}


class LiteRtError(RuntimeError):
    pass


class Any(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("value", ctypes.c_int64)]


class EnvOption(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_int), ("value", Any)]


class Layout(ctypes.Structure):
    # rank: bits 0-6, has_strides: bit 7 of the first word.
    _fields_ = [("bits", ctypes.c_uint32), ("dimensions", ctypes.c_int32 * MAX_RANK),
                ("strides", ctypes.c_uint32 * MAX_RANK)]

    def shape(self) -> tuple:
        return tuple(self.dimensions[:self.bits & 0x7F])


class RankedTensorType(ctypes.Structure):
    _fields_ = [("element_type", ctypes.c_int), ("layout", Layout)]


_size, _ptr, _cstr = ctypes.c_size_t, ctypes.POINTER, ctypes.c_char_p
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_PROTOTYPES = {
    "LiteRtCreateEnvironment": [ctypes.c_int, _ptr(EnvOption), _ptr(H)],
    "LiteRtGetEnvironmentOptions": [H, _ptr(H)],
    "LiteRtGetEnvironmentOptionsValue": [H, ctypes.c_int, _ptr(Any)],
    "LiteRtCreateModelFromFile": [H, _cstr, _ptr(H)],
    "LiteRtDestroyModel": [H],
    "LiteRtGetNumModelSignatures": [H, _ptr(_size)],
    "LiteRtGetModelSignature": [H, _size, _ptr(H)],
    "LiteRtGetSignatureKey": [H, _ptr(_cstr)],
    "LiteRtGetNumSignatureInputs": [H, _ptr(_size)],
    "LiteRtGetNumSignatureOutputs": [H, _ptr(_size)],
    "LiteRtGetSignatureInputName": [H, _size, _ptr(_cstr)],
    "LiteRtGetSignatureOutputName": [H, _size, _ptr(_cstr)],
    "LiteRtGetSignatureInputTensorByIndex": [H, _size, _ptr(H)],
    "LiteRtGetSignatureOutputTensorByIndex": [H, _size, _ptr(H)],
    "LiteRtGetRankedTensorType": [H, _ptr(RankedTensorType)],
    "LiteRtCreateOptions": [_ptr(H)],
    "LiteRtDestroyOptions": [H],
    "LiteRtSetOptionsHardwareAccelerators": [H, ctypes.c_int],
    "LiteRtCreateOpaqueOptions": [_cstr, ctypes.c_void_p, CALLBACK, _ptr(H)],
    "LiteRtAddOpaqueOptions": [H, H],
    "LiteRtCreateCompiledModel": [H, H, H, _ptr(H)],
    "LiteRtDestroyCompiledModel": [H],
    "LiteRtCompiledModelResizeInputTensor": [H, _size, _size, _ptr(ctypes.c_int), _size],
    "LiteRtGetCompiledModelOutputTensorLayouts": [H, _size, _size, _ptr(Layout),
                                                  ctypes.c_bool],
    "LiteRtCreateTensorBufferFromHostMemory": [_ptr(RankedTensorType), ctypes.c_void_p,
                                               _size, CALLBACK, _ptr(H)],
    "LiteRtGetTensorBufferPackedSize": [H, _ptr(_size)],
    "LiteRtDestroyTensorBuffer": [H],
    "LiteRtRunCompiledModel": [H, _size, _size, _ptr(H), _size, _ptr(H)],
    # The runtime's per-op profiler (a compiled model made with profiling on).
    "LiteRtCompiledModelGetProfiler": [H, _ptr(H)],
    "LiteRtResetProfiler": [H],
    "LiteRtStartProfiler": [H],
    "LiteRtStopProfiler": [H],
    "LiteRtGetProfileSummary": [H, H, _ptr(ctypes.c_void_p)],
}
_VOID = {"LiteRtDestroyModel", "LiteRtDestroyOptions", "LiteRtDestroyCompiledModel",
         "LiteRtDestroyTensorBuffer"}
# The runtime calls these on memory it does not own (our arrays, our option text).
NOTHING_TO_FREE = CALLBACK(lambda _: None)


def check(status: int, what: str):
    if status != 0:
        raise LiteRtError(f"{what}: {STATUS.get(status, f'status {status}')}")


def library_path() -> Path:
    spec = importlib.util.find_spec("ai_edge_litert")  # its __init__ is not run
    if spec is None or not spec.submodule_search_locations:
        raise LiteRtError("ai-edge-litert is not installed (pip install ai-edge-litert)")
    return Path(list(spec.submodule_search_locations)[0]) / LIBRARY


def pinned_version() -> str:
    """The ai-edge-litert version our distribution requires (pyproject.toml)."""
    try:
        requirements = importlib.metadata.requires("fomm-convert") or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    for line in requirements:
        found = re.match(r"\s*ai[-_.]edge[-_.]litert\s*==\s*([^\s;,]+)", line, re.I)
        if found:
            return found.group(1)
    raise LiteRtError("fomm-convert's installed metadata pins no ai-edge-litert (reinstall "
                      "it: pip install -e . or the wheel)")


def installed_version(path: Path) -> str | None:
    """The version of the ai-edge-litert distribution that installed `path` (its RECORD
    lists the file with this sha256), None when none did."""
    digest = None
    for info in sorted(path.parent.parent.glob("ai_edge_litert-*.dist-info")):
        dist = importlib.metadata.PathDistribution(info)
        if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() != DISTRIBUTION:
            continue
        for record in dist.files or ():
            if record.hash is None or Path(dist.locate_file(record)) != path:
                continue
            if digest is None:
                digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest())
            if record.hash.mode == "sha256" and digest.rstrip(b"=").decode() == record.hash.value:
                return dist.version
    return None


def check_library(path: Path) -> None:
    """Refuse a libLiteRt.so other than the pinned distribution's, before loading it."""
    pinned = pinned_version()
    found = installed_version(path) if path.is_file() else None
    if found != pinned:
        what = f"ai-edge-litert {found}" if found else "no ai-edge-litert distribution"
        raise LiteRtError(f"{path} is from {what}, not the pinned {pinned} that this code "
                          f"calls; install it: pip install 'ai-edge-litert=={pinned}'")


_state = threading.Lock(), {}


def runtime():
    """(the library with its prototypes, the process's environment), made once: the
    environment registers the CPU accelerator only (no GPU or NPU libraries are loaded)
    and logs errors only."""
    lock, made = _state
    with lock:
        if not made:
            path = library_path()
            check_library(path)
            lib = ctypes.CDLL(str(path))
            for name, args in _PROTOTYPES.items():
                function = getattr(lib, name)
                function.argtypes = args
                function.restype = None if name in _VOID else ctypes.c_int
            options = (EnvOption * 2)(EnvOption(_AUTO_REGISTER_ACCELERATORS, Any(_ANY_INT, CPU)),
                                      EnvOption(_MIN_LOGGER_SEVERITY, Any(_ANY_INT, _ERROR)))
            environment = H()
            check(lib.LiteRtCreateEnvironment(2, options, ctypes.byref(environment)),
                  "creating the environment")
            _check_layouts(lib, environment)
            made.update(lib=lib, environment=environment)
        return made["lib"], made["environment"]


def _check_layouts(lib, environment):
    """Our structs as the library reads them: an option we set, read back through the
    library's own accessor, and a tensor type whose packed size the library computes."""
    options, value = H(), Any()
    check(lib.LiteRtGetEnvironmentOptions(environment, ctypes.byref(options)), "options")
    check(lib.LiteRtGetEnvironmentOptionsValue(options, _MIN_LOGGER_SEVERITY,
                                               ctypes.byref(value)), "options")
    shape = (2, 3, 5)
    memory = (ctypes.c_float * 64)()  # 256 bytes, 64-aligned below
    start = ctypes.addressof(memory) + (-ctypes.addressof(memory) % 64)
    kind = RankedTensorType(FLOAT32)
    kind.layout.bits = len(shape)
    kind.layout.dimensions[:len(shape)] = shape
    buffer, packed = H(), _size()
    check(lib.LiteRtCreateTensorBufferFromHostMemory(ctypes.byref(kind), start, 128,
                                                     NOTHING_TO_FREE, ctypes.byref(buffer)),
          "a tensor buffer")
    try:
        check(lib.LiteRtGetTensorBufferPackedSize(buffer, ctypes.byref(packed)), "its size")
    finally:
        lib.LiteRtDestroyTensorBuffer(buffer)
    if (value.type, value.value, packed.value) != (_ANY_INT, _ERROR, 4 * 2 * 3 * 5):
        raise LiteRtError(f"{library_path()}: reads our structs otherwise than we lay them "
                          f"out (an option read back as type {value.type} value "
                          f"{value.value}, a 2x3x5 float32 tensor as {packed.value} bytes)")
