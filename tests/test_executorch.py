"""The `executorch` format and backend (issue 24): .pte files exported from the torch
reference with torch.export and lowered to XNNPACK, against the oracle (the original's
numbers) through `predict --bundle`; the gate our own .pte reader holds them to, on crafted
files (fast) and on a built bundle's files edited as an attacker edits them (slow: the
export takes minutes).

ExecuTorch is the `executorch` extra (pyproject.toml, in dev); without it the tests that run
it fail when CI=true and skip elsewhere, naming what to install."""
from __future__ import annotations

import json
import re
import shutil
import struct
from importlib.metadata import version

import pytest

from fomm_convert.bundle.manifest import toolchain_packages
from fomm_convert.bundle.models_check import ModelFileError
from fomm_convert.bundle.models_check.executorch import read_facts
from fomm_convert.extras import missing_extra
from fomm_convert.formats import EXECUTORCH_FOLDER

from conftest import (FIXTURES, build_in_process_of_its_own, config_path, demo_media,
                      missing_tool)
from oracle_policy import predict_meets_oracle
from test_hostile_bundle import command, refusal, resign
from test_hostile_models import resync

CASES = {"tiny": "tiny-seed7.pth.tar", "tiny-single-jac": "tiny-single-jac-seed7.pth.tar"}
PTE = f"{EXECUTORCH_FOLDER}/process_kp_driving.pte"


def header(program_size: int, base: int, root: int = 40) -> bytes:
    """The first 40 bytes of a .pte: root offset, ET12, the eh00 extended header."""
    return (struct.pack("<I", root) + b"ET12" + b"eh00"
            + struct.pack("<IQQQ", 32, program_size, base, 0))


@pytest.mark.parametrize("data, reason", [
    (b"", "no ET12 identifier"),
    (b"\0" * 64, "no ET12 identifier"),
    (header(64, 64)[:8] + b"xx00" + header(64, 64)[12:] + bytes(24), "no eh00"),
    (header(4096, 4096) + bytes(24), "a program of 4096 and segments from 4096 in 64"),
    (header(64, 64, root=1 << 20) + bytes(24), "offset 1048576 lies outside the program"),
    (header(64, 64) + struct.pack("<i", -1000) + bytes(20),
     "offset 1040 lies outside"),
])
def test_gate_refuses_malformed_programs(tmp_path, data, reason):
    """Bytes that are not a well-formed program: one line naming the file and why, before
    any runtime reads them."""
    path = tmp_path / "m.pte"
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as caught:
        read_facts(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable ExecuTorch program") and \
        reason in message and "\n" not in message, message


def test_missing_extra_names_it():
    error = ImportError("No module named 'executorch'", name="executorch")
    assert str(missing_extra(error, "backend executorch")) == (
        "backend executorch needs executorch, which is not installed: "
        "pip install 'fomm-convert[executorch]'")


# The packages a manifest records before ExecuTorch (every other bundle's manifest keeps
# exactly these).
TOOLCHAIN = ("tensorflow", "torch", "onnx", "onnxruntime", "ai-edge-litert", "numpy",
             "flatbuffers")


def test_toolchain_adds_executorch_only_with_its_files():
    assert toolchain_packages(["tflite", "onnx", "savedmodel", "tflite-int8"]) == TOOLCHAIN
    assert toolchain_packages(["executorch", "onnx"]) == (*TOOLCHAIN, "executorch")


def test_chunked_convs_are_the_same_convolutions():
    """The detector's convolutions over more than 16 channels become sums over 16-channel
    slices (export/executorch.py): the float64 convolution's numbers, the others kept."""
    import torch
    from torch import nn
    from fomm_convert.export.executorch import ChunkedConv2d, chunked_convs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(40, 7, 3, padding=1), nn.Conv2d(7, 5, 3),
                          nn.Conv2d(40, 3, 1, bias=False), nn.Conv2d(40, 40, 3, groups=40))
    x = torch.randn(2, 40, 9, 9)
    with torch.no_grad():
        wide = torch.cat([model[0](x), model[2](x)], 1)
        exact = torch.cat([nn.functional.conv2d(x.double(), m.weight.double(), None if m.bias
                                                is None else m.bias.double(), padding=m.padding)
                           for m in (model[0], model[2])], 1)
        chunked_convs(model)
        chunked = torch.cat([model[0](x), model[2](x)], 1)
    assert [type(m).__name__ for m in model] == ["ChunkedConv2d", "Conv2d", "ChunkedConv2d",
                                                 "Conv2d"]
    assert [p.in_channels for p in model[0].parts] == [16, 16, 8]
    assert isinstance(model[2], ChunkedConv2d) and model[2].parts[0].bias is None
    assert (chunked.double() - exact).abs().max() < 2e-6
    assert (wide.double() - exact).abs().max() < 2e-6


# ------------------------------------------------------------------ built bundles (slow)
@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """case -> its ExecuTorch-only bundle, built on first use (minutes each)."""
    try:
        import executorch.runtime  # noqa: F401
    except ImportError:
        missing_tool("needs ExecuTorch: pip install 'fomm-convert[executorch]'")
    root = tmp_path_factory.mktemp("executorch")
    built = {}

    def get(case: str):
        if case not in built:
            built[case] = build_in_process_of_its_own(
                root / case, "--formats", "executorch", config=config_path(case),
                checkpoint=FIXTURES / CASES[case])
        return built[case]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_meets_the_oracle(bundles, tmp_path, case):
    """`predict --bundle DIR --backend executorch`, the spec from the manifest: every oracle
    array within its tolerance (keypoints 1e-5, the rest 1e-4), the 8 driving frames
    called one by one on the batch-1 files."""
    predict_meets_oracle(bundles(case), "executorch", FIXTURES / f"{case}.npz",
                         tmp_path / "out.npz")


@pytest.mark.slow
def test_manifest_records_executorch_version(bundles, tmp_path):
    """The manifest (and so the bundle's version) records ExecuTorch's version; a manifest
    re-signed without it is refused in one line naming the field."""
    manifest = json.loads((bundles("tiny") / "manifest.json").read_text())
    assert sorted(manifest["toolchain"]) == sorted(["fomm-convert", *TOOLCHAIN, "executorch"])
    assert manifest["toolchain"]["executorch"] == version("executorch")
    bundle = tmp_path / "b"
    shutil.copytree(bundles("tiny"), bundle)
    del manifest["toolchain"]["executorch"]
    (bundle / "manifest.json").write_text(json.dumps(resign(manifest)))
    line = refusal(command("verify", bundle, "--files-only", cwd=tmp_path))
    assert line == f"{bundle / 'manifest.json'}: toolchain.executorch: missing", line


def _replace(old: bytes, new: bytes):
    """An attack: the same-length bytes `old` of the file replaced by `new`."""
    assert len(old) == len(new)

    def attack(bundle):
        path = bundle / PTE
        data = path.read_bytes()
        assert old in data, old
        path.write_bytes(data.replace(old, new))
    return attack


def _truncate(bundle):
    path = bundle / PTE
    path.write_bytes(path.read_bytes()[:-64])


@pytest.mark.slow
@pytest.mark.parametrize("attack, expected", [
    (_replace(b"aten::amax", b"aten::mmax"), r"kernel 'aten::mmax.out' is not one our exporter "
                                              r"emits"),
    (_replace(b"XnnpackBackend", b"VulkanBackend\0"), r"delegate .* \(ours: XnnpackBackend\)"),
    # The metadata check and the gate each refuse it (verify runs the metadata check first).
    (_replace(b"fomm_convert_json", b"fomm_convert_evil"),
     r"methods .*, not \['forward'|no fomm_convert\.json metadata"),
    (_truncate, r"segment \d+ \(\d+\+\d+ bytes\) lies outside the file's"),
], ids=["kernel", "delegate", "method", "truncated"])
def test_hostile_pte_refused_by_verify_and_predict(bundles, tmp_path, attack, expected):
    """A bundle's .pte edited (its file table made to match): verify and predict refuse it
    in one line naming the file and the rule, before ExecuTorch loads it."""
    bundle = tmp_path / "b"
    shutil.copytree(bundles("tiny"), bundle)
    attack(bundle)
    resync(bundle, EXECUTORCH_FOLDER)
    inputs = demo_media(tmp_path / "inputs", 2)
    for result in (command("verify", bundle, "--files-only", cwd=tmp_path),
                   command("predict", "--bundle", bundle, "--backend", "executorch",
                           "--inputs", inputs / "in.npz", "--out", tmp_path / "o.npz",
                           cwd=tmp_path)):
        line = refusal(result)
        assert line.startswith(f"{bundle / PTE}: ") and re.search(expected, line), line
    assert not (tmp_path / "o.npz").exists()
