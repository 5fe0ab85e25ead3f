"""The torch reference equals the original: state_dict layout for every config, and the
oracle's recorded numbers through `fomm-convert predict --backend torch`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.cli import cli
from fomm_convert.runtime import load_backend
from fomm_convert.spec import load_spec
from fomm_convert.torch_model import build_models

from conftest import EXTRA_CONFIGS, FIXTURES, ORACLE, SPEC_TABLES, config_path, fast_first
from oracle_policy import STAGE, assert_matches_oracle, assert_stages_match_oracle

TABLES = {**{c: c for c in EXTRA_CONFIGS}, **SPEC_TABLES}

@pytest.mark.parametrize("config", sorted(TABLES))
def test_state_dict_equals_fact_table(config):
    table = json.loads((FIXTURES / "statedicts" / f"{TABLES[config]}.json").read_text())
    kp_detector, generator = build_models(load_spec(config_path(config)))
    for net, module in (("kp_detector", kp_detector), ("generator", generator)):
        ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                for k, v in module.state_dict().items()]
        assert ours == table[net], net


def run_predict(tmp_path, config, checkpoint, npz, *extra):
    out = tmp_path / f"out-{len(list(tmp_path.glob('out-*.npz')))}.npz"  # each run its own
    result = CliRunner().invoke(cli, ["predict", "--config", config, "--checkpoint",
                                      str(checkpoint), "--inputs", str(npz), "--out", str(out),
                                      "--backend", "torch", *extra])
    assert result.exit_code == 0, result.output
    return dict(np.load(out))


@pytest.mark.parametrize("case, checkpoint", fast_first(
    ("tiny", "tiny-seed7.pth.tar"), ("tiny", "tiny-seed7-zip.pth.tar"),
    ("tiny-single-jac", "tiny-single-jac-seed7.pth.tar")))
def test_predict_matches_oracle_tiny(tmp_path, case, checkpoint):
    oracle = np.load(FIXTURES / f"{case}.npz")
    ours = run_predict(tmp_path, config_path(case), FIXTURES / checkpoint, FIXTURES / f"{case}.npz")
    compared = assert_matches_oracle(ours, oracle)
    assert len(compared) == 20
    ac = run_predict(tmp_path, config_path(case), FIXTURES / checkpoint, FIXTURES / f"{case}.npz",
                     "--align-corners")
    err = np.abs(ac["gen_prediction"] - oracle["gen_ac_prediction"]).max()
    assert err <= STAGE["other"]
    # The two conventions really differ, so the flag is not a no-op.
    assert np.abs(ac["gen_prediction"] - ours["gen_prediction"]).max() > 1e-3


@pytest.mark.slow
def test_predict_matches_oracle_vox256(tmp_path, vox256_checkpoint):
    oracle = np.load(ORACLE / "vox-256.npz")
    inputs = tmp_path / "in.npz"
    np.savez(inputs, source=oracle["source"], driving=oracle["driving"])
    rows = ",".join(str(i) for i in oracle["gen_frame_positions"])
    ours = run_predict(tmp_path, "vox", vox256_checkpoint, inputs, "--gen-frames", rows)
    assert_matches_oracle(ours, oracle)


@pytest.mark.parametrize("case, checkpoint", [("tiny", "tiny-seed7.pth.tar"),
                                              ("tiny-single-jac", "tiny-single-jac-seed7.pth.tar")])
def test_stages_fed_oracle_inputs(case, checkpoint):
    backend = load_backend("torch", spec=load_spec(config_path(case)),
                           checkpoint=load_checkpoint(FIXTURES / checkpoint))
    assert_stages_match_oracle(backend, np.load(FIXTURES / f"{case}.npz"))


def test_encode_once_equals_generator():
    spec = load_spec(config_path("tiny"))
    backend = load_backend("torch", spec=spec,
                           checkpoint=load_checkpoint(FIXTURES / "tiny-seed7.pth.tar"))
    oracle = np.load(FIXTURES / "tiny.npz")
    source = oracle["source"].transpose(0, 2, 3, 1)
    kp_source = {k: oracle[f"kp_source_{k}"] for k in ("value", "jacobian")}
    kp_driving = {k: oracle[f"norm_rel1_adapt1_{k}"][:3] for k in ("value", "jacobian")}
    full = backend.generator(source, kp_driving, kp_source)["prediction"]
    fast = backend.generate(backend.encode_source(source), kp_driving, kp_source)
    assert np.abs(full - fast).max() <= 1e-6


def test_no_jacobian_model_runs_relative(tmp_path):
    """The original raises KeyError here; we animate with relative positions, no jacobian."""
    from fomm_convert.synth import write_checkpoint
    spec = load_spec(config_path("tiny-nojac"))
    ckpt = tmp_path / "nojac.pth.tar"
    write_checkpoint(spec, 3, ckpt)
    ours = run_predict(tmp_path, config_path("tiny-nojac"), ckpt, FIXTURES / "tiny.npz")
    assert not [k for k in ours if k.endswith("_jacobian")]
    rel = ours["norm_rel1_adapt0_value"]
    expected = ours["kp_driving_value"] - ours["kp_driving_value"][:1] + ours["kp_source_value"]
    np.testing.assert_allclose(rel, expected, atol=1e-7)
    assert np.isfinite(ours["gen_prediction"]).all()


def test_coordinate_grid_and_gaussians_on_non_square_maps():
    """x runs along the width, y along the height: a swap shows on a non-square map."""
    import torch
    from fomm_convert.torch_model.blocks import kp2gaussian, make_coordinate_grid
    grid = make_coordinate_grid(2, 3)
    assert grid.shape == (2, 3, 2)
    np.testing.assert_array_equal(grid[..., 0].numpy(), [[-1, 0, 1], [-1, 0, 1]])
    np.testing.assert_array_equal(grid[..., 1].numpy(), [[-1, -1, -1], [1, 1, 1]])
    # A keypoint at x = 1 (right edge), y = -1 (top) peaks at row 0, last column.
    blob = kp2gaussian(torch.tensor([[[1.0, -1.0]]]), (5, 9), 0.01)[0, 0].numpy()
    assert np.unravel_index(blob.argmax(), blob.shape) == (0, 8)


def test_encode_source_is_nhwc_like_every_backend():
    """encode_source's arrays are interchangeable between backends (NHWC)."""
    spec = load_spec(config_path("tiny"))
    ckpt = load_checkpoint(FIXTURES / "tiny-seed7.pth.tar")
    torch_backend = load_backend("torch", spec=spec, checkpoint=ckpt)
    tf_backend = load_backend("tf", spec=spec, checkpoint=ckpt)
    source = np.load(FIXTURES / "tiny.npz")["source"].transpose(0, 2, 3, 1)
    ours, theirs = torch_backend.encode_source(source), tf_backend.encode_source(source)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].shape == theirs[key].shape, key
        assert np.abs(ours[key] - theirs[key]).max() <= 1e-4, key
