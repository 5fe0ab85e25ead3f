"""fomm_convert.synth (FOMM's rules: fomm_convert.fomm.synth): seeded synthetic checkpoints in the
original's layout."""
from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import FIXTURES, config_path
from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.cli import cli
from fomm_convert.fomm.synth import synth_state_dict
from fomm_convert.spec import load_spec
from fomm_convert.synth import make_checkpoint, write_checkpoint
from fomm_convert.torch_model import build_models, load_weights
from fomm_convert.torch_model.blocks import gaussian_kernel

TINY = FIXTURES / "configs" / "tiny.yaml"
TINY_CONFIGS = ["tiny", "tiny-pad", "tiny-single-jac", "tiny-nojac", "tiny-noocc"]
BOOKKEEPING = ["discriminator", "optimizer_generator", "optimizer_discriminator",
               "optimizer_kp_detector", "epoch"]


@pytest.fixture(scope="module")
def tiny():
    return load_spec(TINY)


def assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key


def fact_table(name):
    table = json.loads((FIXTURES / "statedicts" / f"{name}.json").read_text())
    return {net: [[key, list(shape), dtype] for key, shape, dtype in table[net]]
            for net in ("kp_detector", "generator")}


def table_of(ckpt):
    return {net: [[key, list(v.shape), str(v.dtype)] for key, v in getattr(ckpt, net).items()]
            for net in ("kp_detector", "generator")}


@pytest.mark.parametrize("zip_", [False, True], ids=["legacy", "zip"])
def test_same_seed_same_tensors(tmp_path, tiny, zip_):
    a = load_checkpoint(write_checkpoint(tiny, 7, tmp_path / "a.pth.tar", zip=zip_))
    b = load_checkpoint(write_checkpoint(tiny, 7, tmp_path / "b.pth.tar", zip=zip_))
    assert_same(a.generator, b.generator)
    assert_same(a.kp_detector, b.kp_detector)
    if zip_:  # the zip folder is 'archive' whatever the file name, so the bytes agree too
        assert a.sha256 == b.sha256


def test_legacy_and_zip_hold_the_same_tensors(tmp_path, tiny):
    legacy = load_checkpoint(write_checkpoint(tiny, 3, tmp_path / "l.pth.tar"))
    archive = load_checkpoint(write_checkpoint(tiny, 3, tmp_path / "z.pth.tar", zip=True))
    assert not zipfile.is_zipfile(legacy.path) and zipfile.is_zipfile(archive.path)
    assert_same(legacy.generator, archive.generator)
    assert_same(legacy.kp_detector, archive.kp_detector)


def test_different_seed_different_tensors(tiny):
    a, b = make_checkpoint(tiny, 1), make_checkpoint(tiny, 2)
    for net in ("generator", "kp_detector"):
        for key, value in a[net].items():
            same = torch.equal(value, b[net][key])
            # Only the fixed entries (kernels, counters) agree between seeds.
            assert same == (key.endswith("num_batches_tracked") or key.endswith("down.weight")), key


def test_values_do_not_depend_on_key_order(tiny):
    kp_detector, _ = build_models(tiny)
    reference = kp_detector.state_dict()
    forward = synth_state_dict(tiny, "kp_detector", reference, 5)
    backward = synth_state_dict(tiny, "kp_detector",
                                dict(reversed(list(reference.items()))), 5)
    for key in forward:
        assert np.array_equal(forward[key], backward[key]), key


@pytest.mark.parametrize("use_torch", [True, False], ids=["torch", "own"])
def test_loads_as_a_synthetic_checkpoint(tmp_path, tiny, use_torch):
    path = write_checkpoint(tiny, 7, tmp_path / "deep" / "er" / "tiny.pth.tar")
    ckpt = load_checkpoint(path, use_torch=use_torch)
    assert ckpt.synthetic is True
    assert ckpt.ignored == BOOKKEEPING
    kp_detector, generator = build_models(tiny)
    load_weights(kp_detector, ckpt.kp_detector, "kp_detector")
    load_weights(generator, ckpt.generator, "generator")
    assert [p.name for p in path.parent.iterdir()] == ["tiny.pth.tar"]  # no temp file left


def test_checkpoint_layout(tiny):
    ckpt = make_checkpoint(tiny, 7)
    assert list(ckpt) == ["generator", "discriminator", "kp_detector", "optimizer_generator",
                          "optimizer_discriminator", "optimizer_kp_detector", "epoch",
                          "synthetic"]
    assert ckpt["synthetic"] == {"generator": "fomm-convert synth", "seed": 7, "config": "tiny"}
    assert ckpt["discriminator"] == {} and ckpt["epoch"] == 0
    kp_detector, generator = build_models(tiny)
    for name, module in (("optimizer_generator", generator),
                         ("optimizer_kp_detector", kp_detector)):
        assert ckpt[name]["state"] == {}
        n_params = len(list(module.parameters()))
        assert ckpt[name]["param_groups"][0]["params"] == list(range(n_params))
    assert ckpt["optimizer_discriminator"]["param_groups"][0]["params"] == []


@pytest.mark.parametrize("name", TINY_CONFIGS)
def test_keys_and_shapes_match_the_fact_table(tmp_path, name):
    spec = load_spec(config_path(name))
    ckpt = load_checkpoint(write_checkpoint(spec, 0, tmp_path / f"{name}.pth.tar"),
                           use_torch=False)
    assert table_of(ckpt) == fact_table(name)


def test_value_rules(tiny):
    ckpt = make_checkpoint(tiny, 7)
    kp, gen = ckpt["kp_detector"], ckpt["generator"]
    assert torch.equal(kp["down.weight"],
                       torch.from_numpy(gaussian_kernel(3, tiny.kp_detector["scale_factor"])))
    assert torch.equal(gen["dense_motion_network.down.weight"],
                       torch.from_numpy(gaussian_kernel(3, tiny.dense_motion["scale_factor"])))
    counter = gen["first.norm.num_batches_tracked"]
    assert counter.dtype == torch.int64 and counter.shape == () and counter.item() == 0
    variances = torch.cat([v for k, v in gen.items() if k.endswith("running_var")])
    assert variances.min() >= 0.5 and variances.max() <= 1.5
    bias = kp["jacobian.bias"].view(-1, 4)
    assert torch.allclose(bias, torch.tensor([1.0, 0, 0, 1]).expand_as(bias), atol=0.25)
    assert all(v.dtype == torch.float32 for k, v in gen.items()
               if not k.endswith("num_batches_tracked"))


@pytest.mark.parametrize("name", ["tiny", "tiny-single-jac", "tiny-pad"])
def test_keypoints_are_healthy(name):
    spec = load_spec(config_path(name))
    kp_detector, _ = build_models(spec)
    ckpt = make_checkpoint(spec, 7)
    load_weights(kp_detector, {k: v.numpy() for k, v in ckpt["kp_detector"].items()},
                 "kp_detector")
    image = torch.rand(4, 3, *spec.frame_shape[:2], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = kp_detector(image)
    value, jacobian = out["value"], out["jacobian"]
    assert torch.isfinite(value).all() and value.abs().max() <= 1
    assert value.std(dim=1).min() > 0.1  # keypoints spread out, not collapsed to one point
    assert torch.isfinite(jacobian).all() and torch.det(jacobian).abs().min() > 0.1


def test_cli(tmp_path):
    out = tmp_path / "made" / "tiny-seed7.pth.tar"
    result = CliRunner().invoke(cli, ["synth", "--config", str(TINY), "--seed", "7",
                                      "--out", str(out), "--zip"])
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.output.strip().splitlines() == [
        f"{out}  {out.stat().st_size} bytes  sha256 {digest}"]
    assert zipfile.is_zipfile(out)
    assert load_checkpoint(out).synthetic


def test_cli_rejects_an_unknown_config(tmp_path):
    result = CliRunner().invoke(cli, ["synth", "--config", "no-such-dataset",
                                      "--out", str(tmp_path / "x.pth.tar")])
    assert result.exit_code != 0
    assert "unknown dataset 'no-such-dataset'" in result.output
    assert not (tmp_path / "x.pth.tar").exists()


def test_vox_matches_its_fact_table():
    spec = load_spec("vox")
    ckpt = make_checkpoint(spec, 0)
    tables = {net: [[k, list(v.shape), str(v.dtype).replace("torch.", "")]
                    for k, v in ckpt[net].items()] for net in ("kp_detector", "generator")}
    assert tables == fact_table("vox-256")
