"""fomm_convert.checkpoint: both readers, both serialisations, and every way a file can be bad."""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from conftest import FIXTURES
from fomm_convert.checkpoint import (LEGACY_MAGIC, LEGACY_PROTOCOL, CheckpointError,
                                  load_checkpoint, state_dict_sha256)

LEGACY = FIXTURES / "tiny-seed7.pth.tar"
ZIP = FIXTURES / "tiny-seed7-zip.pth.tar"
SINGLE = FIXTURES / "tiny-single-jac-seed7.pth.tar"
CASES = [(LEGACY, "tiny.json"), (ZIP, "tiny.json"), (SINGLE, "tiny-single-jac.json")]
READERS = pytest.mark.parametrize("use_torch", [True, False], ids=["torch", "own"])
BOOKKEEPING = ["discriminator", "optimizer_generator", "optimizer_discriminator",
               "optimizer_kp_detector", "epoch"]


def assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key]), key


def assert_refused(path, use_torch, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, use_torch=use_torch)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- good files ---------------------------------------------------------------------------

@READERS
@pytest.mark.parametrize("path, case", CASES, ids=lambda v: getattr(v, "name", v))
def test_reproduces_oracle_weight_hashes(path, case, use_torch):
    expected = json.loads((FIXTURES / case).read_text())["weights_sha256"]
    ckpt = load_checkpoint(path, use_torch=use_torch)
    assert state_dict_sha256(ckpt.kp_detector) == expected["kp_detector"]
    assert state_dict_sha256(ckpt.generator) == expected["generator"]
    assert ckpt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ckpt.ignored == BOOKKEEPING
    assert ckpt.synthetic is False
    assert ckpt.path == path


@pytest.mark.parametrize("path", [LEGACY, ZIP, SINGLE], ids=lambda p: p.name)
def test_readers_agree(path):
    with_torch = load_checkpoint(path, use_torch=True)
    without = load_checkpoint(path, use_torch=False)
    assert_same(with_torch.kp_detector, without.kp_detector)
    assert_same(with_torch.generator, without.generator)
    bn = without.kp_detector["predictor.encoder.down_blocks.0.norm.num_batches_tracked"]
    assert bn.dtype == np.int64 and bn.shape == ()


def test_legacy_and_zip_hold_the_same_tensors():
    legacy, archive = load_checkpoint(LEGACY), load_checkpoint(ZIP)
    assert_same(legacy.generator, archive.generator)
    assert_same(legacy.kp_detector, archive.kp_detector)


def test_arrays_are_owned_and_writeable():
    ckpt = load_checkpoint(LEGACY, use_torch=False)
    weight = ckpt.generator["final.weight"]
    assert weight.flags.c_contiguous and weight.flags.writeable and weight.flags.owndata


def test_own_reader_needs_no_torch(tmp_path):
    """In a fresh interpreter where torch cannot be imported, the default path still works."""
    script = f"""
import json, sys
sys.modules['torch'] = None
from fomm_convert.checkpoint import load_checkpoint, state_dict_sha256, CheckpointError
expected = json.load(open({str(FIXTURES / 'tiny.json')!r}))['weights_sha256']
for path in ({str(LEGACY)!r}, {str(ZIP)!r}):
    ckpt = load_checkpoint(path)
    assert state_dict_sha256(ckpt.kp_detector) == expected['kp_detector'], path
    assert state_dict_sha256(ckpt.generator) == expected['generator'], path
try:
    load_checkpoint(sys.argv[1])
except CheckpointError as exc:
    assert 'os.system' in str(exc), exc
else:
    raise SystemExit('malicious file loaded')
assert 'torch' not in {{name.split('.')[0] for name, mod in sys.modules.items() if mod}}
print('ok')
"""
    evil, marker = tmp_path / "evil.pth.tar", tmp_path / "pwned"
    evil.write_bytes(legacy_file(malicious_pickle("os", "system", (f"touch {marker}",))))
    result = subprocess.run([sys.executable, "-c", script, str(evil)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert not marker.exists()


def save(tmp_path, name, obj, zip_):
    path = tmp_path / name
    torch.save(obj, path, _use_new_zipfile_serialization=zip_)
    return path


@READERS
@pytest.mark.parametrize("zip_", [False, True], ids=["legacy", "zip"])
def test_dtypes_offsets_strides_and_prefixes(tmp_path, zip_, use_torch):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    generator = OrderedDict(
        [(f"{dtype}".replace("torch.", ""), (torch.arange(6) % 3).to(dtype).reshape(2, 3))
         for dtype in (torch.float32, torch.float64, torch.float16, torch.int64, torch.int32,
                       torch.int16, torch.int8, torch.uint8, torch.bool)])
    generator["transposed"] = base.t()  # strides (1, 6)
    generator["offset_slice"] = base[1:3, 2:5]  # storage offset 8, non-contiguous
    generator["shares_storage"] = base  # the same storage as the two views above
    generator["scalar"] = torch.tensor(3, dtype=torch.int64)
    generator["empty"] = torch.zeros(0, 5)
    generator["parameter"] = torch.nn.Parameter(torch.full((2, 2), 0.5))
    kp_detector = OrderedDict([("module.kp.weight", torch.ones(2, 2)),
                               ("module.kp.bias", torch.zeros(2))])
    path = save(tmp_path, "mixed.pth", {"generator": generator, "kp_detector": kp_detector,
                                        "epoch": 3}, zip_)
    ckpt = load_checkpoint(path, use_torch=use_torch)
    assert list(ckpt.generator) == list(generator)
    for key, tensor in generator.items():
        expected = tensor.detach().numpy()
        got = ckpt.generator[key]
        assert got.dtype == expected.dtype and got.shape == expected.shape, key
        assert np.array_equal(got, expected), key
    assert list(ckpt.kp_detector) == ["kp.weight", "kp.bias"]  # DataParallel prefix stripped
    assert ckpt.ignored == ["epoch"]


@READERS
def test_partial_module_prefix_is_kept(tmp_path, use_torch):
    sd = OrderedDict([("module.a", torch.ones(1)), ("b", torch.ones(1))])
    path = save(tmp_path, "partial.pth", {"generator": sd, "kp_detector": sd}, False)
    assert list(load_checkpoint(path, use_torch=use_torch).generator) == ["module.a", "b"]


@READERS
def test_unsupported_dtype(tmp_path, use_torch):
    sd = OrderedDict(w=torch.ones(2, dtype=torch.bfloat16))
    path = save(tmp_path, "bf16.pth", {"generator": sd, "kp_detector": OrderedDict()}, True)
    assert_refused(path, use_torch, "bfloat16" if use_torch else "BFloat16Storage")


# --- bad files ----------------------------------------------------------------------------

def bad_files(tmp_path):
    """name -> path of every kind of file that is not a usable checkpoint."""
    files = {}

    def write(name, data):
        files[name] = tmp_path / name
        files[name].write_bytes(data)

    files["missing"] = tmp_path / "missing.pth.tar"
    files["directory"] = tmp_path / "a-directory"
    files["directory"].mkdir()
    write("empty", b"")
    write("text", b"dataset_params:\n  frame_shape: [256, 256, 3]\n")
    write("random", np.random.default_rng(0).bytes(4096))
    write("plain-pickle-list", pickle.dumps([1, 2, 3], protocol=2))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("notes/readme.txt", "hello")
    write("plain-zip", buffer.getvalue())
    files["torch-list"] = save(tmp_path, "torch-list", [torch.ones(2)], False)
    other = OrderedDict(w=torch.ones(2))
    files["other-model"] = save(tmp_path, "other-model", {"netG": other, "netD": other}, False)
    files["bare-state-dict"] = save(tmp_path, "bare", OrderedDict([("kp.weight", torch.ones(2))]),
                                    True)
    files["no-kp-detector"] = save(tmp_path, "no-kp", {"generator": other, "epoch": 1}, True)
    files["not-a-state-dict"] = save(tmp_path, "not-sd", {"generator": other,
                                                          "kp_detector": [1, 2]}, False)
    files["non-tensor-entry"] = save(tmp_path, "non-tensor", {"generator": other,
                                                              "kp_detector": {"a": 1}}, True)
    legacy, archive = LEGACY.read_bytes(), ZIP.read_bytes()
    write("short-storage", with_short_storage(archive))
    # Cuts inside the magic number, the headers, the object pickle, the key list, the
    # storage headers and data, and one byte short.
    for cut in (1, 9, 15, 30, 140, 5000, 22062, 25000, 25409, 25413, 30000, len(legacy) - 1):
        write(f"legacy-cut-{cut}", legacy[:cut])
    for cut in (2, 30, 1000, 20000, len(archive) // 2, len(archive) - 30, len(archive) - 1):
        write(f"zip-cut-{cut}", archive[:cut])
    return files


def with_short_storage(archive: bytes) -> bytes:
    """The zip checkpoint with its first storage record cut to 8 bytes (CRC still valid)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(buffer, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:8] if info.filename.endswith("/data/0") else data)
    return buffer.getvalue()


BAD = {
    "missing": "no such file",
    "directory": "is a directory",
    "empty": "empty file",
    "text": "not a PyTorch checkpoint",
    "random": "not a PyTorch checkpoint",
    "plain-pickle-list": "not a PyTorch checkpoint",
    "plain-zip": "not a torch checkpoint",
    "torch-list": "not a FOMM checkpoint: the file holds an object of type list",
    "other-model": "wrong model: no 'generator' or 'kp_detector' entry (entries: 'netG', 'netD')",
    "bare-state-dict": "wrong model: a bare state_dict",
    "no-kp-detector": "wrong model: no 'kp_detector'",
    "not-a-state-dict": "'kp_detector' is not a state dict (list)",
    "non-tensor-entry": "'kp_detector' entry 'a' is not a tensor (int)",
    "short-storage": "corrupt",
}


@READERS
def test_bad_files(tmp_path, use_torch):
    files = bad_files(tmp_path)
    for name, path in files.items():
        fragment = BAD.get(name, "truncated")
        assert_refused(path, use_torch, fragment)


# --- malicious files ----------------------------------------------------------------------

def malicious_pickle(module: str, name: str, args: tuple) -> bytes:
    """Protocol 2: GLOBAL module.name, the pickled argument tuple, REDUCE, STOP."""
    pushed_args = pickle.dumps(args, protocol=2)[2:-1]  # drop PROTO 2 and STOP
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + pushed_args + b"R."


def legacy_file(payload: bytes) -> bytes:
    header = b"".join(pickle.dumps(v, protocol=2) for v in (
        LEGACY_MAGIC, LEGACY_PROTOCOL,
        {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 8}}))
    return header + payload + pickle.dumps([], protocol=2)


def zip_file(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return buffer.getvalue()


def payloads(marker):
    return {
        "os.system": ("os", "system", (f"touch {marker}",)),
        "posix.system": ("posix", "system", (f"touch {marker}",)),
        "builtins.eval": ("builtins", "eval", (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.Popen": ("subprocess", "Popen", (["touch", str(marker)],)),
        "builtins.getattr": ("builtins", "getattr", ("x", "upper")),
    }


def test_the_malicious_payload_is_real(tmp_path):
    """Unpickled naively, the payload does run: the refusals below are not vacuous."""
    marker = tmp_path / "pwned"
    pickle.loads(malicious_pickle(*payloads(marker)["os.system"]))
    assert marker.exists()


@READERS
@pytest.mark.parametrize("wrap", [legacy_file, zip_file, lambda p: p], ids=["legacy", "zip", "raw"])
@pytest.mark.parametrize("refused", list(payloads("m")))
def test_malicious_globals_are_refused(tmp_path, refused, wrap, use_torch):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    path.write_bytes(wrap(malicious_pickle(*payloads(marker)[refused])))
    assert_refused(path, use_torch, "refused to load", refused)
    assert not marker.exists()


@READERS
def test_refused_global_inside_a_state_dict(tmp_path, use_torch):
    """A payload nested among real tensors is refused too, not just one at the top."""
    marker = tmp_path / "pwned"
    evil = malicious_pickle("os", "system", (f"touch {marker}",))
    # {'generator': {}, 'kp_detector': <payload>}: build the dict around the payload's body.
    body = evil[2:-1]
    payload = (b"\x80\x02}(X\t\x00\x00\x00generator}X\x0b\x00\x00\x00kp_detector"
               + body + b"u.")
    path = tmp_path / "nested.pth.tar"
    path.write_bytes(zip_file(payload))
    assert_refused(path, use_torch, "os.system")
    assert not marker.exists()


def test_a_crafted_file_cannot_alter_the_reader(tmp_path):
    """BUILD can set attributes on what a global resolves to; later loads must not see it."""
    state = b"N}X\x05\x00\x00\x00dtypeK\x05s\x86b"  # (None, {'dtype': 5}) then BUILD
    defaults = b"N}X\x0c\x00\x00\x00__defaults__K\x05\x85s\x86b"
    payload = (b"\x80\x02(ctorch\nFloatStorage\n" + state
               + b"ctorch._utils\n_rebuild_tensor_v2\n" + defaults + b"l.")
    path = tmp_path / "tamper.pth.tar"
    path.write_bytes(legacy_file(payload))
    assert_refused(path, False, "holds an object of type list")
    ckpt = load_checkpoint(LEGACY, use_torch=False)
    expected = json.loads((FIXTURES / "tiny.json").read_text())["weights_sha256"]
    assert state_dict_sha256(ckpt.generator) == expected["generator"]
