"""Checkpoints as hostile input (issue 12): both readers refuse, in one line naming the file
and the entry, before any large allocation, and no payload ever runs.

Generators below build each category of hostile file: tensors declaring more bytes than
the file holds (stride 0), more than the bounds, geometry outside the storage, >64 dims,
meta / sparse / quantized tensors, NaN and Inf weights, zip members that lie or inflate,
oversized pickles, and pickles that would run code (REDUCE, STACK_GLOBAL, INST, OBJ, BUILD).
"""
from __future__ import annotations

import io
import pickle
import re
import struct
import sys
import zlib
from collections import OrderedDict

import numpy as np
import pytest
import torch

from peak_memory import measured_run

from fomm_convert.checkpoint import LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError, load_checkpoint
from fomm_convert.checkpoint import bounds
from fomm_convert.checkpoint.with_torch import _unpickling_message
from fomm_convert.limits import (CHECKPOINT_MAX_DIMS, CHECKPOINT_MAX_NETWORK_BYTES,
                                 CHECKPOINT_MAX_PICKLE_BYTES, CHECKPOINT_MAX_STORAGE_BYTES,
                                 CHECKPOINT_MAX_TENSOR_BYTES, CHECKPOINT_MAX_ZIP_RATIO)

READERS = pytest.mark.parametrize("use_torch", [True, False], ids=["torch", "own"])
FORMATS = pytest.mark.parametrize("zip_", [False, True], ids=["legacy", "zip"])
GIB = 1 << 30
RSS_BOUND_MB = 400  # the attacks below took 1.0-2.3 GB before the bounds


def refused(path, use_torch, pattern):
    """Load, expect a refusal whose one line is '<path>: ' + pattern (a regex, anchored)."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, use_torch=use_torch)
    message = str(info.value)
    assert "\n" not in message, message
    assert re.fullmatch(re.escape(f"{path}: ") + pattern, message), message
    assert "weights_only" not in message and "Re-running" not in message, message
    return message


# --- generators: any geometry, both serialisations ----------------------------------------

class Storage:
    """A storage as the pickle declares it (its key, element type and element count)."""

    def __init__(self, key, numel, kind=torch.FloatStorage):
        self.key, self.numel, self.kind = key, numel, kind


class Tensor:
    """Pickles as torch._utils._rebuild_tensor_v2 with whatever geometry it is given."""

    def __init__(self, storage, size, stride, offset=0):
        self.storage, self.size, self.stride, self.offset = storage, size, stride, offset

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                 OrderedDict()))


class _Pickler(pickle.Pickler):
    def __init__(self, f, legacy):
        super().__init__(f, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            pid = ("storage", obj.kind, obj.key, "cpu", obj.numel)
            return pid + (None,) if self.legacy else pid
        return None


def dumps(obj, legacy):
    buffer = io.BytesIO()
    _Pickler(buffer, legacy).dump(obj)
    return buffer.getvalue()


def checkpoint(**generator):
    return {"generator": OrderedDict(generator), "kp_detector": OrderedDict(), "epoch": 1}


LEGACY_HEAD = b"".join(pickle.dumps(v, protocol=2) for v in (
    LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                                    "type_sizes": {"short": 2, "int": 4, "long": 8}}))


def legacy_bytes(pickled: bytes, storages: dict) -> bytes:
    """A legacy file: the object pickle, then {key: (numel in its header, raw bytes)}."""
    out = LEGACY_HEAD + pickled + pickle.dumps(list(storages), protocol=2)
    for numel, raw in storages.values():
        out += struct.pack("<q", numel) + raw
    return out


def raw_zip(members) -> bytes:
    """A zip archive written by hand from (name, method, crc, data, size in the directory)
    rows, so that a member can be deflated cheaply or lie about its size."""
    out, central = bytearray(), bytearray()
    for name, method, crc, data, size in members:
        name = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data),
                           size, len(name), 0) + name + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc,
                               len(data), size, len(name), 0, 0, 0, 0, 0, offset) + name
    n = len(members)
    return bytes(out + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n,
                                              len(central), len(out), 0))


def stored(name, data, size=None):
    return (name, 0, zlib.crc32(data), data, len(data) if size is None else size)


def zip_bytes(pickled: bytes, storages: dict, extra=()) -> bytes:
    """A zip checkpoint: archive/data.pkl, {key: raw bytes} under archive/data/, `extra` rows."""
    rows = [stored("archive/data.pkl", pickled), stored("archive/byteorder", b"little")]
    rows += [stored(f"archive/data/{key}", raw) for key, raw in storages.items()]
    return raw_zip(rows + list(extra) + [stored("archive/version", b"3\n")])


def write(tmp_path, name, obj, storages, zip_):
    """obj (with Tensor/Storage stand-ins) and {key: raw bytes} as a checkpoint file."""
    path = tmp_path / name
    if zip_:
        path.write_bytes(zip_bytes(dumps(obj, False), storages))
    else:
        items = {key: (len(raw) // 4, raw) for key, raw in storages.items()}
        path.write_bytes(legacy_bytes(dumps(obj, True), items))
    return path


def zeros_deflated(mib: int):
    """(crc32, raw deflate stream) of `mib` MiB of zeros, built from one repeated block."""
    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    middle = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(chunk) + c.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return crc, first + middle * (mib - 2) + last


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 1 MB torch zip whose one storage inflates to 1 GiB (it took 2.1-2.3 GB to load)."""
    crc, data = zeros_deflated(1024)
    n = GIB // 4
    pickled = dumps(checkpoint(w=Tensor(Storage("0", n), [n], [1])), False)
    path = tmp_path_factory.mktemp("bomb") / "bomb.pth"
    path.write_bytes(zip_bytes(pickled, {}, [("archive/data/0", 8, crc, data, GIB)]))
    assert path.stat().st_size < 1_100_000
    return path


def stride0(tmp_path, zip_):
    """A 1 KB checkpoint whose 1 GiB tensor is one float repeated by a stride of 0."""
    obj = checkpoint(w=Tensor(Storage("0", 1), [GIB // 4], [0]))
    return write(tmp_path, "stride0.pth", obj, {"0": bytes(4)}, zip_)


def shared(tmp_path, zip_, entries):
    """`entries` network tensors, 1 MiB each, all views of one 1 MiB storage."""
    n = (1 << 20) // 4
    storage = Storage("0", n)
    obj = checkpoint(**{f"w{i}": Tensor(storage, [n], [1]) for i in range(entries)})
    return write(tmp_path, "shared.pth", obj, {"0": bytes(n * 4)}, zip_)


# --- declared bytes against the file, and the bounds --------------------------------------

@READERS
@FORMATS
def test_stride0_tensor_declaring_more_than_the_file_holds(tmp_path, zip_, use_torch):
    refused(stride0(tmp_path, zip_), use_torch,
            r"'generator' entry 'w': declares 1073741824 bytes, the file holds 4")


@READERS
@FORMATS
def test_stride0_within_the_file_still_loads(tmp_path, zip_, use_torch):
    """An expanded view needing no more bytes than its storage has is a valid tensor."""
    obj = checkpoint(w=Tensor(Storage("0", 4), [2, 2], [0, 1]))
    raw = np.arange(4, dtype="<f4").tobytes()
    ckpt = load_checkpoint(write(tmp_path, "ok.pth", obj, {"0": raw}, zip_), use_torch=use_torch)
    assert np.array_equal(ckpt.generator["w"], [[0, 1], [0, 1]])


@READERS
@FORMATS
def test_per_tensor_bound(tmp_path, zip_, use_torch):
    # An empty tensor's other dimensions count too (numpy refuses them past its limit).
    obj = checkpoint(w=Tensor(Storage("0", 0), [0, 1 << 40], [1, 1]))
    refused(write(tmp_path, "wide.pth", obj, {"0": b""}, zip_), use_torch,
            rf"'generator' entry 'w': declares {4 << 40} bytes, at most "
            rf"{CHECKPOINT_MAX_TENSOR_BYTES} per tensor")


@READERS
def test_per_tensor_bound_on_a_real_storage(tmp_path, monkeypatch, use_torch):
    """The bound itself, lowered so that the file stays small."""
    monkeypatch.setattr(bounds, "CHECKPOINT_MAX_TENSOR_BYTES", 64)
    obj = checkpoint(w=Tensor(Storage("0", 32), [32], [1]))
    refused(write(tmp_path, "big.pth", obj, {"0": bytes(128)}, True), use_torch,
            r"'generator' entry 'w': declares 128 bytes, at most 64 per tensor")


@READERS
@FORMATS
def test_total_bound_of_the_two_networks(tmp_path, zip_, use_torch):
    """1025 entries sharing one 1 MiB storage would become 1 GiB of arrays."""
    assert CHECKPOINT_MAX_NETWORK_BYTES == 1024 << 20
    refused(shared(tmp_path, zip_, 1025), use_torch,
            rf"'generator' entry 'w1024': the networks declare over "
            rf"{CHECKPOINT_MAX_NETWORK_BYTES} bytes in all")


@READERS
@FORMATS
def test_sharing_a_storage_below_the_bound_loads(tmp_path, zip_, use_torch):
    ckpt = load_checkpoint(shared(tmp_path, zip_, 3), use_torch=use_torch)
    assert list(ckpt.generator) == ["w0", "w1", "w2"]


# --- geometry ------------------------------------------------------------------------------

GEOMETRY = {
    "negative-stride": (([4], [-1], 0), r"bad stride -1 \(a tensor's sizes, strides and "
                                        r"offset are integers >= 0\)"),
    "negative-size": (([-4], [1], 0), r"bad size -4 .*"),
    "negative-offset": (([4], [1], -1), r"bad storage offset -1 .*"),
    "string-size": ((["4"], [1], 0), r"bad size '4' .*"),
    "offset-outside": (([4], [1], 10), r"reaches element 13 of its storage, which holds 4"),
    "huge-offset": (([1], [1], 1 << 62), rf"reaches element {1 << 62} of its storage, "
                                          r"which holds 4"),
    "huge-stride": (([2], [1 << 62], 0), rf"reaches element {1 << 62} of its storage, "
                                          r"which holds 4"),
    "stride-outside": (([2, 2], [3, 1], 0), r"reaches element 4 of its storage, which holds 4"),
    "rank-mismatch": (([4], [1, 1], 0), r"its size has 1 dimensions, its stride 2"),
    "too-many-dims": (([1] * 65, [1] * 65, 0), r"has 65 dimensions, at most 64"),
}


@READERS
@FORMATS
@pytest.mark.parametrize("case", list(GEOMETRY))
def test_geometry(tmp_path, case, zip_, use_torch):
    (size, stride, offset), pattern = GEOMETRY[case]
    obj = checkpoint(w=Tensor(Storage("0", 4), size, stride, offset))
    refused(write(tmp_path, f"{case}.pth", obj, {"0": bytes(16)}, zip_), use_torch,
            r"'generator' entry 'w': " + pattern)


@READERS
@FORMATS
def test_65_dims_saved_by_torch(tmp_path, zip_, use_torch):
    assert CHECKPOINT_MAX_DIMS == 64
    path = tmp_path / "dims.pth"
    torch.save({"generator": {"deep": torch.ones([1] * 65)}, "kp_detector": {}}, path,
               _use_new_zipfile_serialization=zip_)
    refused(path, use_torch, r"'generator' entry 'deep': has 65 dimensions, at most 64")


# --- tensors we do not convert ---------------------------------------------------------------

KINDS = {
    "meta": (lambda: torch.empty(3, 3, device="meta"),
             r"a meta tensor: it holds no values, only tensors stored with their data are "
             r"supported"),
    "sparse-coo": (lambda: torch.sparse_coo_tensor([[0, 2]], [1.0, 2.0], (4,)),
                   r"a sparse tensor: only dense tensors are supported"),
    "sparse-csr": (lambda: torch.eye(3).to_sparse_csr(),
                   r"a sparse tensor: only dense tensors are supported"),
    "quantized": (lambda: torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8),
                  r"a quantized tensor: only float and integer tensors are supported"),
    "uint16": (lambda: torch.ones(2, dtype=torch.uint16), r"unsupported tensor dtype torch.uint16"),
    "bfloat16": (lambda: torch.ones(2, dtype=torch.bfloat16),
                 r"unsupported tensor dtype torch.bfloat16 \(torch.BFloat16Storage\)"),
    "complex": (lambda: torch.ones(2, dtype=torch.complex64),
                r"unsupported tensor dtype torch.complex64 \(torch.ComplexFloatStorage\)"),
}


@READERS
@FORMATS
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", list(KINDS))
def test_tensor_kinds_in_a_network_are_named(tmp_path, kind, zip_, use_torch):
    make, pattern = KINDS[kind]
    path = tmp_path / f"{kind}.pth"
    torch.save({"generator": {"w": make()}, "kp_detector": {}}, path,
               _use_new_zipfile_serialization=zip_)
    refused(path, use_torch, r"'generator' entry 'w': " + pattern)


@READERS
@FORMATS
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tensor_kinds_outside_the_networks_pass(tmp_path, zip_, use_torch):
    """Only the two networks are converted: what else the file holds may be anything torch
    writes without code (the discriminator, the optimizers)."""
    path = tmp_path / "others.pth"
    # (torch itself cannot read back a uint16 tensor it saved in the legacy format)
    others = {kind: make() for kind, (make, _) in KINDS.items() if zip_ or kind != "uint16"}
    others["nan"] = torch.tensor([float("nan")])
    torch.save({"generator": {"w": torch.ones(2)}, "kp_detector": {}, "discriminator": others},
               path, _use_new_zipfile_serialization=zip_)
    ckpt = load_checkpoint(path, use_torch=use_torch)
    assert ckpt.ignored == ["discriminator"]


@READERS
@FORMATS
def test_tensor_with_attributes_loads(tmp_path, zip_, use_torch):
    """A tensor with Python attributes pickles through _rebuild_from_type_v2."""
    tensor = torch.arange(3.0)
    tensor.note = "x"
    path = tmp_path / "attrs.pth"
    torch.save({"generator": {"w": tensor}, "kp_detector": {"p": torch.nn.Parameter(tensor)}},
               path, _use_new_zipfile_serialization=zip_)
    ckpt = load_checkpoint(path, use_torch=use_torch)
    assert np.array_equal(ckpt.generator["w"], [0, 1, 2])
    assert np.array_equal(ckpt.kp_detector["p"], [0, 1, 2])


# --- non-finite weights --------------------------------------------------------------------

@READERS
@FORMATS
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")],
                         ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("net", ["generator", "kp_detector"])
def test_non_finite_weights(tmp_path, value, net, zip_, use_torch):
    weights = {"generator": {"ok": torch.zeros(2)}, "kp_detector": {"ok": torch.zeros(2)}}
    bad = torch.zeros(2, 3, dtype=torch.float16 if net == "kp_detector" else torch.float32)
    bad[1, 2] = value
    weights[net]["module.conv.weight"] = bad
    weights[net] = OrderedDict((f"module.{k}" if not k.startswith("module.") else k, v)
                               for k, v in weights[net].items())
    path = tmp_path / "nan.pth"
    torch.save(weights, path, _use_new_zipfile_serialization=zip_)
    refused(path, use_torch, rf"'{net}' entry 'module.conv.weight': holds 1 NaN or infinite "
                             r"values \(of 6\)")


# --- storages against the file, zip members ------------------------------------------------

def one_storage(numel, legacy, size=4):
    """The object pickle of a checkpoint whose tensor 'w' views `size` elements of storage
    '0', which declares `numel`."""
    return dumps(checkpoint(w=Tensor(Storage("0", numel), [size], [1])), legacy)


BIG = CHECKPOINT_MAX_STORAGE_BYTES // 4 + 1  # elements: one more byte than a storage may hold
# name -> (the file's bytes, the refusal after '<path>: ' as a function of the file's size)
FILES = {
    "legacy storage count differs from the object": (
        lambda: legacy_bytes(one_storage(GIB // 4, True), {"0": (4, bytes(16))}),
        lambda size: r"truncated or corrupt legacy torch file \(ValueError: storage '0' "
                     rf"holds 4 elements, expected {GIB // 4}\)"),
    # The header agrees with the object, but the file ends: torch would allocate 1 GiB.
    "legacy storage past the end of the file": (
        lambda: legacy_bytes(one_storage(GIB // 4, True), {"0": (GIB // 4, bytes(16))}),
        lambda size: r"truncated or corrupt legacy torch file \(ValueError: file ends at "
                     rf"byte {size}, storage '0' at byte {size - 16 + GIB}\)"),
    "legacy storage over the storage bound": (
        lambda: legacy_bytes(one_storage(BIG, True), {"0": (BIG, bytes(16))}),
        lambda size: rf"storage '0' declares {BIG * 4} bytes, at most "
                     rf"{CHECKPOINT_MAX_STORAGE_BYTES}"),
    # The directory tells the truth: the member is as large as the storage.
    "zip storage over the storage bound": (
        lambda: zip_bytes(one_storage(BIG, False), {},
                          [stored("archive/data/0", bytes(16), BIG * 4)]),
        lambda size: rf"zip member 'archive/data/0' inflates to {BIG * 4} bytes, at most "
                     rf"{CHECKPOINT_MAX_STORAGE_BYTES}"),
    "zip record smaller than its storage": (
        lambda: zip_bytes(one_storage(GIB // 4, False), {"0": bytes(16)}),
        lambda size: r"truncated or corrupt torch zip archive \(ValueError: storage '0' "
                     rf"declares {GIB} bytes, its record holds 16\)"),
    "zip member lying about its size": (
        lambda: zip_bytes(one_storage(4, False), {},
                          [stored("archive/data/0", bytes(16), 3 << 30)]),
        lambda size: rf"zip member 'archive/data/0' inflates to {3 << 30} bytes, at most "
                     rf"{CHECKPOINT_MAX_STORAGE_BYTES}"),
    "zip data.pkl over the pickle bound": (
        lambda: raw_zip([stored("archive/data.pkl", pickle.dumps({}, protocol=2), 64 << 20),
                         stored("archive/version", b"3\n")]),
        lambda size: rf"zip member 'archive/data.pkl' inflates to {64 << 20} bytes, at most "
                     rf"{CHECKPOINT_MAX_PICKLE_BYTES}"),
    "zip member twice": (
        lambda: zip_bytes(one_storage(1, False, size=1), {"0": bytes(4)},
                          [stored("archive/data/0", bytes(4))]),
        lambda size: r"zip member 'archive/data/0' appears twice"),
    # BINUNICODE declaring 2 GiB in a 200-byte file: the unpickler would allocate it.
    "legacy pickle declaring a huge string": (
        lambda: LEGACY_HEAD + b"\x80\x02}X\x09\x00\x00\x00generatorX"
        + struct.pack("<I", 2 << 30) + b"abc",
        lambda size: rf"the object pickle is larger than {CHECKPOINT_MAX_PICKLE_BYTES} bytes"),
}


@READERS
@pytest.mark.parametrize("case", list(FILES))
def test_storages_and_members_against_the_file(tmp_path, case, use_torch):
    make, pattern = FILES[case]
    path = tmp_path / "case.pth"
    path.write_bytes(make())
    refused(path, use_torch, pattern(path.stat().st_size))


@READERS
def test_zip_bomb(bomb, use_torch):
    refused(bomb, use_torch, rf"zip member 'archive/data/0' inflates \d+ bytes to {GIB} "
                             rf"\(over {CHECKPOINT_MAX_ZIP_RATIO}:1, a zip bomb\)")


@READERS
def test_zip_of_many_small_bombs(tmp_path, monkeypatch, use_torch):
    """Each member under the ratio floor (raised here so that the file stays small), the
    archive as a whole far over the ratio."""
    monkeypatch.setattr(bounds, "CHECKPOINT_ZIP_RATIO_FLOOR", 4 << 20)
    crc, data = zeros_deflated(2)
    n = (2 << 20) // 4
    obj = checkpoint(**{f"w{i}": Tensor(Storage(str(i), n), [n], [1]) for i in range(40)})
    rows = [(f"archive/data/{i}", 8, crc, data, 2 << 20) for i in range(40)]
    path = tmp_path / "many.pth"
    path.write_bytes(zip_bytes(dumps(obj, False), {}, rows))
    refused(path, use_torch, rf"its zip members inflate {path.stat().st_size} bytes to "
                             rf"{(80 << 20) + len(dumps(obj, False)) + 8} \(over "
                             rf"{CHECKPOINT_MAX_ZIP_RATIO}:1, a zip bomb\)")


DEEP = {
    # {'generator': {((...(None,)...),): 1}}: hashing the key recursed in C and crashed.
    "tuple-key": b"\x80\x02}X\x09\x00\x00\x00generator}N" + b"\x85" * 1_000_000 + b"K\x01ss.",
    "list-value": b"\x80\x02}X\x09\x00\x00\x00generator]" + b"]" * 100_000
                  + b"a" * 100_000 + b"s.",
}


@READERS
@FORMATS
@pytest.mark.parametrize("case", list(DEEP))
def test_deep_nesting(tmp_path, case, zip_, use_torch):
    path = tmp_path / "deep.pth"
    path.write_bytes(zip_bytes(DEEP[case], {}) if zip_ else legacy_bytes(DEEP[case], {}))
    refused(path, use_torch, r"the object pickle nests deeper than 1000 levels")


@READERS
def test_long_keys_and_odd_keys_stay_one_short_line(tmp_path, use_torch):
    sd = OrderedDict([(("a\nb",) * 50, torch.ones(1))])
    path = tmp_path / "key.pth"
    torch.save({"generator": sd, "kp_detector": {}}, path)
    message = refused(path, use_torch, r"'generator' has a non-string key \(.*\.\.\.\)")
    assert len(message) < 200 + len(str(path))


# --- pickles that would run code -------------------------------------------------------------

def _text(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _short_text(s: str) -> bytes:
    data = s.encode()
    return b"\x8c" + bytes([len(data)]) + data


def payloads(marker) -> dict:
    """name -> (pickle that creates `marker` when naively unpickled, the global refused)."""
    touch = f"touch {marker}"
    return {
        "REDUCE": (b"\x80\x02cos\nsystem\n" + _text(touch) + b"\x85R.", "os.system"),
        "STACK_GLOBAL": (b"\x80\x04" + _short_text("os") + _short_text("system") + b"\x93"
                         + _short_text(touch) + b"\x85R.", "os.system"),
        "INST": (b"(S'" + touch.encode() + b"'\nios\nsystem\n.", "os.system"),
        "OBJ": (b"(cos\nsystem\n" + _text(touch) + b"o.", "os.system"),
        # BUILD sets __setstate__ = os.system on an instance, then BUILD calls it.
        "BUILD": (b"\x80\x02ctypes\nSimpleNamespace\n)RN}" + _text("__setstate__")
                  + b"cos\nsystem\ns\x86b" + _text(touch) + b"b.", "types.SimpleNamespace"),
        # A memory bomb torch's own allowlist would run: bytearray(8 GiB) fills 8 GiB.
        "bytearray": (b"\x80\x02cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85R.",
                      "builtins.bytearray"),
    }


def wrapped(payload: bytes, how: str) -> bytes:
    """The payload as a legacy file's object, as a zip's data.pkl, or nested in a network."""
    if how == "legacy":
        return legacy_bytes(payload, {})
    if how == "zip":
        return zip_bytes(payload, {})
    body = payload[2:-1] if payload.startswith(b"\x80") else payload[:-1]
    nested = (b"\x80\x02}(X\x09\x00\x00\x00generator}X\x01\x00\x00\x00w" + body
              + b"sX\x0b\x00\x00\x00kp_detector}u.")
    return zip_bytes(nested, {})


@READERS
@FORMATS
def test_build_cannot_change_a_storage_after_its_checks(tmp_path, zip_, use_torch):
    """BUILD on the storage a persistent id gave: numel 4 (what the file holds) becomes
    2**28, which the tensor then claims. Refused: the stand-ins take no state."""
    n = GIB // 4
    pickled = dumps(checkpoint(w=Tensor(Storage("0", 4), [n], [1])), not zip_)
    assert pickled.count(b"Q") == 1  # BINPERSID
    build = b"N}X\x05\x00\x00\x00numelJ" + struct.pack("<i", n) + b"s\x86b"
    pickled = pickled.replace(b"Q", b"Q" + build)
    path = tmp_path / "build.pth"
    path.write_bytes(zip_bytes(pickled, {"0": bytes(16)}) if zip_
                     else legacy_bytes(pickled, {"0": (4, bytes(16))}))
    kind = "torch zip archive" if zip_ else "legacy torch file"
    refused(path, use_torch, rf"truncated or corrupt {kind} \(ValueError: the file sets the "
                             r"state of a Storage\)")


@pytest.mark.parametrize("name", list(payloads("m")))
def test_payloads_are_real(tmp_path, name):
    """Naively unpickled, each payload does run: the refusals below are not vacuous."""
    marker = tmp_path / "pwned"
    if name == "bytearray":
        return  # its effect is memory; refusing it is what matters
    pickle.loads(payloads(marker)[name][0])
    assert marker.exists()


@READERS
@pytest.mark.parametrize("how", ["legacy", "zip", "nested"])
@pytest.mark.parametrize("name", list(payloads("m")))
def test_code_running_pickles_are_refused_as_such(tmp_path, name, how, use_torch):
    marker = tmp_path / "pwned"
    payload, global_name = payloads(marker)[name]
    path = tmp_path / "evil.pth"
    path.write_bytes(wrapped(payload, how))
    refused(path, use_torch, rf"refused to load: the file references the global "
                             rf"{re.escape(global_name)}, which a checkpoint does not need "
                             r"\(it could run code\)")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pth"]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["legacy", "zip"])
@pytest.mark.parametrize("name", [name for name in payloads("m") if name != "bytearray"])
def test_torch_refusals_never_read_as_corruption(tmp_path, name, how):
    """Behind our reader, torch's own weights-only refusal is mapped to one line that says
    it was refused (never 'truncated or corrupt', never torch's unsafe advice). (torch
    itself runs the bytearray payload: only our reader stands before it.)"""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(wrapped(payloads(marker)[name][0], how))
    with pytest.raises(pickle.UnpicklingError) as info:
        torch.load(path, weights_only=True)
    assert "weights_only" in str(info.value)  # torch's text does advise the unsafe load
    message = _unpickling_message(path, how, str(info.value))
    assert "\n" not in message and message.startswith(f"{path}: refused to load: "), message
    assert "could run code" in message or "cannot run code" in message, message
    assert "truncated" not in message and "weights_only" not in message, message
    assert not marker.exists()


def test_torch_only_refusal_of_a_safe_pickle(tmp_path):
    """Protocol 4 with nothing but plain values: our reader reads it; torch's weights-only
    reader does not know its opcodes, and says so without calling the file corrupt."""
    path = tmp_path / "proto4.pth"
    obj = {"generator": OrderedDict(w=torch.arange(3.0)), "kp_detector": OrderedDict()}
    torch.save(obj, path, pickle_protocol=4)
    assert list(load_checkpoint(path, use_torch=False).generator) == ["w"]
    refused(path, True, r"refused to load: torch's weights-only reader rejects it "
                        r"\(Unsupported operand \d+\); it accepts only what cannot run code")


# --- peak memory ------------------------------------------------------------------------------

_CHILD = """
import sys
from fomm_convert.checkpoint import CheckpointError, load_checkpoint
try:
    load_checkpoint(sys.argv[1], use_torch=sys.argv[2] == "torch")
except CheckpointError as exc:
    print(exc)
else:
    print("LOADED")
"""


def peak(path, reader):
    result, rss = measured_run(sys.executable, "-c", _CHILD, path, reader)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), rss


@pytest.mark.parametrize("reader", ["torch", "own"])
def test_attacks_are_refused_in_little_memory(tmp_path, bomb, reader):
    """Each in a fresh interpreter, its peak RSS measured alone."""
    (tmp_path / "legacy").mkdir()
    (tmp_path / "zip").mkdir()
    attacks = [stride0(tmp_path / "legacy", False), stride0(tmp_path / "zip", True),
               shared(tmp_path, False, 1025), bomb]
    for path in attacks:
        message, rss = peak(path, reader)
        assert message.startswith(f"{path}: "), message
        assert rss < RSS_BOUND_MB, (path, message, rss)
