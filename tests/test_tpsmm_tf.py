"""TPSMM's TF graph (converter/tpsmm/tf_model): the weight table total both ways on every
upstream table, every layer against the torch reference (= the original:
tests/test_tpsmm_torch.py) and against the original's intermediates, end to end against
the original (../shared/oracle-tpsmm) in every mode, near-singular TPS systems, and the
conversion of every model function to TFLite (builtin ops, no int64, GPU-delegable).

The policy and the vox-256 treatment are tests/test_tpsmm_torch.py's: keypoints 1e-5, the
adapt scale 1e-5 relative, every other array 1e-4 relative to its largest magnitude
where that exceeds 1; on vox-256, keypoints end to end, and the generator fed the
oracle's keypoints held to the policy or, where the original's own float32 is that far
from float64, to twice that distance. The graph solves the TPS systems by elimination
(tps_solve.py), so `tps_L_inverse` has no counterpart.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F

from fomm_convert.bundle.models_check.tflite_shapes import RULES
from fomm_convert.export.tflite_ops import op_report
from fomm_convert.fixtures import fixed_inputs
from fomm_convert.tpsmm.parity import layer_parity
from fomm_convert.tf_model import ops
from fomm_convert.tf_model.blocks import named_variables
from fomm_convert.spec import load_spec
from fomm_convert.tf_model.weights import TRANSFORMS, WeightTableError, load_entry_rules
from fomm_convert.tpsmm.architecture import NETWORKS
from fomm_convert.tpsmm.conditioning import near_singular, system64
from fomm_convert.tpsmm.tf_model import TABLE_PATH, ProcessKpDriving, build_tf_models, tps
from fomm_convert.tpsmm.tf_model.fast import fast_models
from fomm_convert.tpsmm.tf_model.functions import model_functions
from fomm_convert.tpsmm.torch_model import MODES
from fomm_convert.tpsmm.torch_model import build_models as build_torch_models

from conftest import builds, fast_first
from test_tf_model import tflite_model
from test_tpsmm_torch import (CASES, KP_NORM, ORACLE, assert_as_accurate_as_the_original,
                              assert_keypoints_within, assert_within, expected_names,
                              float64_arrays, max_errors, require, table)
from test_tpsmm_torch import weights  # noqa: F401  (the session fixture)

UPSTREAM = ("vox-256", "taichi-256", "ted-384", "mgif-256")


def nhwc(a) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(np.asarray(a), (0, 2, 3, 1)))


def nchw(a) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(np.asarray(a), (0, 3, 1, 2)))


def tf_models(weights, name: str) -> dict:
    return build_tf_models(table(name)["config"], weights(name))


@pytest.fixture(scope="module")
def tiny_graph(weights):
    """tiny's TF networks (seed-7 weights) and their graph functions, traced once."""
    models = tf_models(weights, "tiny")
    return models, model_functions(models, table("tiny")["config"], (64, 64))


# ---------------------------------------------------------------- the weight table
# The TF leaf each transform writes: a TF path is its torch key with this last part.
LEAF = {"conv_oihw_to_hwio": "kernel", "depthwise_c1kk_to_kkc1": "kernel",
        "linear_oi_to_io": "kernel", "identity": "bias", "bn_gamma": "gamma",
        "bn_beta": "beta", "bn_moving_mean": "moving_mean",
        "bn_moving_variance": "moving_variance", "norm_gamma": "gamma", "norm_beta": "beta"}


@pytest.mark.parametrize("name", fast_first("tiny", *UPSTREAM))
def test_table_fills_every_network_of_the_upstream_tables(name):
    """Every tensor of the original's state dicts used once or dropped (BatchNorm step
    counters), every TF variable set once (apply_networks refuses otherwise), TF paths
    reading like torch keys, BatchNorm rules exactly on the modules with running
    statistics; bg_predictor, the optimizer state and the epoch dropped by name."""
    facts = table(name)
    entries = {net: {k: np.zeros(shape, dtype) for k, shape, dtype in facts[net]}
               for net in facts if net not in ("config", "frame_shape")}
    entries.update(optimizer_avd={"state": {}, "param_groups": []}, epoch=0)
    _, reports = build_tf_models(facts["config"], entries, return_reports=True)
    for net in NETWORKS:
        report = reports[net]
        assert [e.torch_key for e in report.entries] == [k for k, _, _ in facts[net]]
        assert {e.torch_key for e in report.dropped} == {
            k for k, _, _ in facts[net] if k.endswith(".num_batches_tracked")}
        batch_norms = {k.rsplit(".", 1)[0] for k, _, _ in facts[net] if "running_mean" in k}
        for e in report.assigned:
            module, leaf = e.torch_key.rsplit(".", 1)
            assert e.tf_path == f"{module}.{LEAF[e.transform]}", e.torch_key
            assert e.transform.startswith("bn_") == (module in batch_norms), e.torch_key
            assert e.transform.startswith("norm_") == (
                leaf in ("weight", "bias") and re.search(r"norm\d?$", module) is not None)
    dropped = {n: r.entries[0].rule for n, r in reports.items() if n not in NETWORKS}
    assert dropped == {"optimizer_avd": "optimizer_state", "epoch": "epoch",
                       **({"bg_predictor": "background_predictor"}
                          if facts["config"]["common_params"]["bg"] else {})}


def test_every_variable_holds_its_tensor_transformed(weights):
    """Values, not only shapes: conv kernels transposed OIHW -> HWIO, linear weights
    [out, in] -> [in, out], vectors as they are."""
    state = weights("tiny")
    models, reports = build_tf_models(table("tiny")["config"], state, return_reports=True)
    for net in NETWORKS:
        variables = dict(named_variables(models[net]))
        for e in reports[net].assigned:
            expected = TRANSFORMS[e.transform](state[net][e.torch_key])
            assert np.array_equal(variables[e.tf_path].numpy(), expected), e.torch_key
    kernel = variables["decoder.0.kernel"].numpy()  # avd_network's first decoder layer
    assert kernel.shape[0] != kernel.shape[1]  # a transpose, not a reshape, is checked


def test_every_misfit_is_reported_at_once(weights):
    state = {net: dict(sd) for net, sd in weights("tiny").items()}
    del state["avd_network"]
    state["dense_motion_network"]["maps.extra"] = np.zeros(3, np.float32)
    conv = state["inpainting_network"]["first.conv.weight"]
    state["inpainting_network"]["first.conv.weight"] = conv[:, :2]
    state.update(discriminator={}, optimizer_avd={})
    with pytest.raises(WeightTableError) as info:
        build_tf_models(table("tiny")["config"], state)
    text = str(info.value)
    for line in ("the checkpoint has no avd_network entry",
                 "unused checkpoint entry discriminator: no entry rule matches it",
                 "unused checkpoint tensor maps.extra: no rule matches it",
                 "shape mismatch: first.conv.weight [8, 2, 7, 7] -> [7, 7, 2, 8]"):
        assert line in text
    assert "optimizer" not in text
    assert info.value.counts().startswith("dense_motion_network 0 missing, 1 unexpected")


def test_entry_rules_only_drop(tmp_path):
    """A checkpoint's networks are the models given, never a table entry's target."""
    path = tmp_path / "table.yaml"
    path.write_text("entries:\n  - {name: keep, pattern: 'bg_predictor', target: 'x',"
                    " transform: identity}\nrules: []\n")
    with pytest.raises(ValueError, match="entries: keep is not a drop rule"):
        load_entry_rules(path)
    assert [rule.name for rule in load_entry_rules(TABLE_PATH)] == [
        "background_predictor", "optimizer_state", "epoch"]


# ---------------------------------------------------------------- per layer
def test_every_layer_matches_the_torch_reference(weights, tiny_graph):
    """The per-layer report names every module of the original in every stage that runs
    it (ModuleLists are never called), resnet18's twice-run relu twice, and passes."""
    config, state = table("tiny")["config"], weights("tiny")
    source, driving = fixed_inputs((64, 64, 3))
    report = layer_parity(config, state, tiny_graph[0], source, driving)
    report.check()
    names = {r.name for r in report.layers}
    modules = {re.sub(r"(:|#).*$", "", name) for name in names}  # list outputs: <path>:<i>
    stages = {"kp_detector": ("kp_source", "kp_driving0", "kp_driving1"),
              "avd_network": ("avd_network",), "dense_motion_network":
              ("dense_motion_network",), "inpainting_network": ("inpainting_network",)}
    for net, module in build_torch_models(config).items():
        paths = {path for path, sub in module.named_modules()
                 if path and not isinstance(sub, torch.nn.ModuleList)}
        assert {k.rsplit(".", 1)[0] for k, _, _ in table("tiny")[net]} <= paths  # the original's
        missing = sorted(f"{stage}/{path}" for stage in stages[net] for path in paths
                         if f"{stage}/{path}" not in modules)
        assert not missing, missing[:10]
    assert {"kp_source/fg_encoder.layer4.1.relu#1", "process_kp_driving/<root>:fg_kp",
            "inpainting_network/<root>:warped_encoder_maps:3"} <= names
    assert not report.extra


def oracle_intermediates(models: dict, oracle, inter) -> dict:
    """Our arrays under tiny_intermediates' names, each network fed the oracle's inputs
    (relative mode, driving position 7)."""
    store = {}

    def run(prefix, call):
        taps = {}
        call(taps)
        store.update({prefix + name: value for name, value in taps.items()})
    source, kp_source = nhwc(oracle["source"]), oracle["kp_source_fg_kp"]
    kp_driving, kp_norm = oracle["kp_driving_fg_kp"][7:8], oracle["kp_norm_relative_fg_kp"][7:8]
    dm = models["dense_motion_network"]
    run("kp_driving7/", lambda taps: models["kp_detector"](nhwc(oracle["driving"][7:8]), taps))
    run("avd7/", lambda taps: models["avd_network"](kp_source, kp_driving, taps))
    run("dense_motion/", lambda taps: dm(source, kp_norm, kp_source, taps))
    h, w = oracle["relative_deformation"].shape[1:3]
    theta = inter["dense_motion.internal/tps_theta"]
    params = inter["dense_motion.internal/tps_control_params"]
    points = tps.control_points(tf.constant(kp_norm))
    internal = {"source_down": store["dense_motion/down"],
                "create_heatmap_representations": nchw(dm.heatmap_representations(
                    h, w, kp_norm, kp_source)),
                "tps_L": tps.system_matrix(points).numpy(), "tps_control_points": points.numpy(),
                "tps_theta": store["dense_motion/<root>:tps_theta"],
                "tps_control_params": store["dense_motion/<root>:tps_control_params"],
                "create_transformations": grids(dm.transformations(h, w, kp_norm, theta,
                                                                   params)),
                "hourglass_input": store["dense_motion/hourglass.encoder:0"],
                "contribution_logits": store["dense_motion/maps"]}
    store.update({f"dense_motion.internal/{k}": v for k, v in internal.items()})
    motion = {"deformation": inter["dense_motion/<root>:deformation"],
              "occlusion_map": [nhwc(inter[f"dense_motion/<root>:occlusion_map:{i}"])
                                for i in range(4)]}
    run("inpainting/", lambda taps: models["inpainting_network"](source, motion, taps))
    return {k: v for k, v in store.items() if k in inter.files}


def grids(transformations) -> np.ndarray:
    """x and y (B, h, w, K+1) -> the original's (B, K+1, h, w, 2)."""
    return np.stack([np.transpose(t.numpy(), (0, 3, 1, 2)) for t in transformations], -1)


def test_every_intermediate_of_the_original_matches(tiny_graph):
    require("tiny_intermediates.npz", "tiny.npz")
    inter = np.load(ORACLE / "tiny_intermediates.npz")
    ours = oracle_intermediates(tiny_graph[0], np.load(ORACLE / "tiny.npz"), inter)
    assert sorted(ours) == sorted(set(inter.files) - {"dense_motion.internal/tps_L_inverse"})
    assert_within(max_errors(ours, inter), inter)


# ---------------------------------------------------------------- end to end
def keypoint_arrays(functions: dict, oracle) -> dict:
    """The keypoint arrays of a case through the graph functions: each frame detected at
    batch 1 (as make_animation), the normalisations and the AVD network on all frames at
    once beside the source's batch 1."""
    def call(model, **inputs):
        return {k: v.numpy() for k, v in functions[model][1]["serving_default"](
            **inputs).items()}
    kp_source = call("kp_detector", image=nhwc(oracle["source"]))["value"]
    kp_driving = np.concatenate([call("kp_detector", image=nhwc(frame[None]))["value"]
                                 for frame in oracle["driving"]])
    ours = {"kp_source_fg_kp": kp_source, "kp_driving_fg_kp": kp_driving}
    for suffix, initial in (("", 0), ("_init3", 3)):
        out = call("process_kp_driving", kp_driving=kp_driving, kp_source=kp_source,
                   kp_driving_initial=kp_driving[initial:initial + 1],
                   use_relative_movement=np.float32(1))
        ours[f"kp_norm_relative{suffix}_fg_kp"] = out["value"]
        scale = ProcessKpDriving()(kp_driving, kp_driving[initial:initial + 1], kp_source,
                                   1.0)["adapt_movement_scale"]  # the graph's, not exported
        ours[f"adapt_movement_scale{suffix}"] = np.float64(scale.numpy()[0])
    standard = call("process_kp_driving", kp_driving=kp_driving, kp_source=kp_source,
                    kp_driving_initial=kp_driving[:1], use_relative_movement=np.float32(0))
    assert np.array_equal(standard["value"], kp_driving)
    ours["kp_norm_avd_fg_kp"] = call("avd_network", kp_source=kp_source,
                                     kp_driving=kp_driving)["value"]
    return ours


def generator_arrays(models: dict, functions: dict, oracle, kp: dict) -> dict:
    """Every generator array of a case from keypoint arrays named as the oracle's: the
    generator's graph function on the generator positions at once, source batch 1; the
    arrays it does not output (relative mode's per-transformation ones) from the dense
    motion network's taps on the same keypoints."""
    signatures = functions["generator"][1]
    source, kp_source = nhwc(oracle["source"]), kp["kp_source_fg_kp"]
    dm = models["dense_motion_network"]
    h, w = oracle["relative_deformation"].shape[1:3]
    ours = {"dm_source_down": nchw(signatures["encode_source"](
        source_image=source)["source_down"])}
    for mode in MODES:
        kp_norm = kp[KP_NORM[mode]][oracle["gen_frame_positions"]]
        out = {k: v.numpy() for k, v in signatures["serving_default"](
            source_image=source, kp_driving=kp_norm, kp_source=kp_source).items()}
        row = {key: nchw(out[key]) for key in ("prediction", "contribution_maps",
                                                *(f"occlusion_map_{i}" for i in range(4)))}
        row.update({key: out[key] for key in ("deformation", "tps_theta", "tps_control_params")},
                   tps_L=tps.system_matrix(tps.control_points(tf.constant(kp_norm))).numpy())
        if mode == "relative":
            taps = {}
            dm(source, kp_norm, kp_source, taps)
            row.update(deformed=nchw(out["deformed"]),
                       deformed_source=taps["<root>:deformed_source"],
                       contribution_logits=taps["maps"],
                       transformations=grids(dm.transformations(
                           h, w, kp_norm, out["tps_theta"], out["tps_control_params"])))
            if "relative_heatmap_representation" in oracle.files:
                row["heatmap_representation"] = nchw(dm.heatmap_representations(
                    h, w, kp_norm, kp_source))
        ours.update({f"{mode}_{key}": value for key, value in row.items()})
    return ours


def frame(oracle) -> tuple:
    return oracle["source"].shape[2:]


# graph: the reference-structured networks, or the exported graph (tf_model/fast.py) with
# every eligible conv rewritten ("all": F(2x2, 3x3); "all-f4": F(4x4, 3x3) where the size
# allows; TFLite's choices on vox-256: test_fast_graph_layer_choices_on_vox256).
@pytest.mark.parametrize("graph", [None, "all", "all-f4"])
@pytest.mark.parametrize("case", fast_first("tiny", "tiny-rect"))
def test_end_to_end_matches_the_original(tiny_graph, case, graph):
    require(f"{case}.npz")
    oracle = np.load(ORACLE / f"{case}.npz")
    models, functions = tiny_graph  # tiny-rect: tiny's weights, its own frame
    if graph is not None:
        models = fast_models(models, frame(oracle), graph)
    if case != "tiny" or graph is not None:
        functions = model_functions(models, table(CASES[case])["config"], frame(oracle))
    kp = keypoint_arrays(functions, oracle)
    ours = {**kp, **generator_arrays(models, functions, oracle, kp)}
    assert set(ours) == expected_names(oracle, "elimination")
    assert_keypoints_within(ours, oracle)


@pytest.mark.slow
def test_vox256_keypoints_end_to_end(weights):
    """As the torch reference: vox-256's frames from our own keypoints are not held to
    the policy (tests/test_tpsmm_torch.py, test_vox256_keypoints_end_to_end: the
    detector's few 1e-7 on keypoints, amplified by the warps as the original's own
    float32 noise is)."""
    require("vox-256.npz")
    oracle = np.load(ORACLE / "vox-256.npz")
    models = tf_models(weights, "vox-256")
    ours = keypoint_arrays(model_functions(models, table("vox-256")["config"], frame(oracle)),
                           oracle)
    assert_keypoints_within(ours, oracle)


@pytest.mark.slow
def test_vox256_generator_fed_the_oracles_keypoints(weights):
    require("vox-256.npz", "vox-256.json")
    oracle = np.load(ORACLE / "vox-256.npz")
    models = tf_models(weights, "vox-256")
    functions = model_functions(models, table("vox-256")["config"], frame(oracle))
    ours = generator_arrays(models, functions, oracle, oracle)
    assert set(ours) == {n for n in expected_names(oracle, "elimination") if "fg_kp" not in n
                         and not n.startswith("adapt_movement_scale")}
    assert_as_accurate_as_the_original(ours, oracle, float64_arrays(weights, oracle))


def test_fast_graph_layer_choices_on_vox256():
    """The exported vox-256 graph's rewrites, layer by layer, as architecture.py decides
    them for XNNPACK (F(4x4, 3x3) from 64x64 on, F(2x2, 3x3) below down to 8x8, the phase
    conv from 16x16 inputs, by F(2x2, 2x2) from 128 input channels): the inpainting
    decoder's resblocks at 32x32 (F2), 64x64 and 128x128 (F4), its 3 up blocks, its final
    conv by stride 2; the dense motion hourglass's encoder at 64x64 .. 4x4 and decoder
    reading 2x2 .. 32x32, its up blocks reading 64x64 (148 channels) and 128x128 (74)."""
    from fomm_convert.tf_model.fast import FusedConv, Stride2Conv
    from fomm_convert.tpsmm.tf_model import build_models
    params = load_spec("tpsmm-vox").model_params()
    models = build_models(params)
    fast = fast_models(models, (256, 256))
    inpainting, dense = fast["inpainting_network"], fast["dense_motion_network"]
    assert [(c.tile, d.tile) for c, d in ((b.conv1, b.conv2) for b in inpainting.resblock)] \
        == [(2, 2)] * 2 + [(4, 4)] * 4
    assert [(b.conv.phase, b.conv.winograd) for b in inpainting.up_blocks] == [(True, True)] * 3
    assert isinstance(inpainting.final, Stride2Conv)
    encoder = dense.hourglass.encoder.down_blocks
    assert all(isinstance(b.conv, FusedConv) for b in encoder)
    assert [b.conv.tile for b in encoder] == [4, 2, 2, 2, 0]
    assert [(b.conv.phase, b.conv.winograd) for b in dense.hourglass.decoder.up_blocks] == \
        [(False, False)] * 3 + [(True, True)] * 2
    assert [(b.conv.phase, b.conv.winograd) for b in dense.up] == [(True, True), (True, False)]
    # encode_source's encoder and the other networks are the reference's own
    assert inpainting.down_blocks is models["inpainting_network"].down_blocks
    assert fast["kp_detector"] is models["kp_detector"]
    assert models["inpainting_network"].resblock[0].conv1.__class__.__name__ == "Conv2d"


def test_encode_once_then_generate_gives_the_same_frames(tiny_graph):
    require("tiny.npz")
    oracle = np.load(ORACLE / "tiny.npz")
    signatures = tiny_graph[1]["generator"][1]
    source = nhwc(oracle["source"])
    kp = {"kp_driving": oracle["kp_norm_relative_fg_kp"][2:5],
          "kp_source": oracle["kp_source_fg_kp"]}
    encoded = signatures["encode_source"](source_image=source)
    assert {k: tuple(v.shape) for k, v in encoded.items()} == {  # coarsest first, as the contract
        "source_features_0": (1, 8, 8, 32), "source_features_1": (1, 16, 16, 32),
        "source_features_2": (1, 32, 32, 16), "source_features_3": (1, 64, 64, 8),
        "source_down": (1, 16, 16, 3)}
    frames = signatures["generate"](source_image=source, **encoded, **kp)["prediction"]
    full = signatures["serving_default"](source_image=source, **kp)["prediction"]
    assert frames.shape == (3, 64, 64, 3)
    assert np.array_equal(frames.numpy(), full.numpy())


# ---------------------------------------------------------------- near-singular TPS
def test_far_coordinates_sample_zeros_without_int32_overflow():
    """A near-singular TPS warps to coordinates of 1e8 and beyond (beyond int32, up to
    float32's largest): clamped before any cast, every tap is outside, so zeros, as torch
    gives (which overflows to NaN at float32's largest, where ours stays 0)."""
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (1, 3, 6, 9)).astype(np.float32)
    far = [1e8, -1e8, 2.2e9, -2.2e9, 4.3e9, 1e30, 3.4e38, -3.4e38]
    grid = np.array([[[x, y] for x in far for y in (0.0, 1e8)]
                     + [[0.0, y] for y in far]], np.float32)[:, None]  # (1, 1, n, 2)
    expected = F.grid_sample(torch.from_numpy(image), torch.from_numpy(grid), mode="bilinear",
                             padding_mode="zeros", align_corners=True).numpy()
    ours = nchw(ops.grid_sample(tf.constant(nhwc(image)), tf.constant(grid[..., 0:1]),
                                tf.constant(grid[..., 1:2]), True).numpy())
    assert np.array_equal(ours, np.zeros_like(ours))
    within = np.abs(grid[0, 0]).max(axis=-1) < 1e31  # the output's last axis
    assert np.array_equal(expected[..., within], ours[..., within])
    assert np.isnan(expected[..., ~within]).all()


def test_frames_stay_finite_when_a_tps_is_singular(tiny_graph):
    """One group of driving keypoints at a float64 root of det L (cond(L) > 1e8): the
    solve's values are huge but finite, its warp samples zeros far outside, and every
    output is finite (the original's torch.inverse raises or gives inf/nan here)."""
    require("tiny.npz")
    oracle = np.load(ORACLE / "tiny.npz")
    generator = tiny_graph[1]["generator"]
    kp_driving = oracle["kp_driving_fg_kp"][:2].copy()
    kp_driving[:, :5] = near_singular(np.random.default_rng(11), "collinear")
    assert np.linalg.cond(system64(kp_driving[0, :5])) > 1e8
    out = generator[1]["serving_default"](source_image=nhwc(oracle["source"]),
                                          kp_driving=kp_driving,
                                          kp_source=oracle["kp_source_fg_kp"])
    for name, value in out.items():
        assert np.isfinite(value.numpy()).all(), name
    assert np.abs(out["tps_control_params"].numpy()[:, 0]).max() > 1e3
    prediction = out["prediction"].numpy()
    assert prediction.min() >= 0 and prediction.max() <= 1


# ---------------------------------------------------------------- TFLite feasibility
# The ops TPSMM's files hold that FOMM's do not, in the TFLite gate's allowlist
# (bundle/models_check/tflite_shapes.py RULES) with the shape rule each takes:
# elementwise ones that of their kind, MAX_POOL_2D AVERAGE_POOL_2D's; FULLY_CONNECTED
# (the AVD network's linear layers) a rule of its own; TANH: the keypoints' 2 sigmoid - 1
# (tpsmm/keypoint_head.py).
NEW_OPS = {"ABS": "same", "LOG": "same", "RSQRT": "same", "TANH": "same",
           "GREATER_EQUAL": "elementwise", "LESS": "elementwise", "MAX_POOL_2D": "pool",
           "FULLY_CONNECTED": "fully_connected"}
TFLITE_TYPES = {0: "FLOAT32", 2: "INT32", 6: "BOOL"}  # schema TensorType; 4 is INT64


def converted(functions: dict) -> dict:
    """{(model, signature): .tflite bytes} of graph functions, builtin ops only."""
    return {(model, name): tflite_model(function, module)
            for model, (module, signatures) in functions.items()
            for name, function in signatures.items()}


def tensors(flatbuffer: bytes) -> list[tuple[int, int]]:
    """(type, rank) of every tensor of every subgraph."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    return [(graph.Tensors(i).Type(), graph.Tensors(i).ShapeLength())
            for graph in (model.Subgraphs(g) for g in range(model.SubgraphsLength()))
            for i in range(graph.TensorsLength())]


@pytest.fixture(scope="module")
@builds
def tiny_tflite(weights):
    """tiny's graph functions of networks of their own, converted. Not tiny_graph's: after
    test_end_to_end_matches_the_original has built fast_models twins of those networks,
    their functions convert to files with no signature at all (seen in a whole-file run,
    2026-12-07; the product exports only the twins' functions, tpsmm/convert.py)."""
    functions = model_functions(tf_models(weights, "tiny"), table("tiny")["config"], (64, 64))
    return functions, converted(functions)


def test_every_model_function_converts_with_builtin_ops(tiny_tflite):
    """Batch dynamic, builtin ops only, no int64 tensor, nothing above 4-D; every op in the
    gate's allowlist, NEW_OPS with their rules."""
    _, files = tiny_tflite
    assert set(files) == {("kp_detector", "serving_default"),
                          ("process_kp_driving", "serving_default"),
                          ("avd_network", "serving_default"),
                          ("generator", "serving_default"), ("generator", "encode_source"),
                          ("generator", "generate")}
    used = set()
    for key, flatbuffer in files.items():
        rows = op_report(flatbuffer)
        assert all(r["builtin"] for r in rows), key
        assert {t for t, _ in tensors(flatbuffer)} <= set(TFLITE_TYPES), key
        assert max(rank for _, rank in tensors(flatbuffer)) <= 4, key
        used |= {r["op"] for r in rows}
    assert used <= set(RULES) and set(NEW_OPS) <= used
    assert {op: RULES[op].shapes.__name__ for op in NEW_OPS} == NEW_OPS
    assert "BATCH_MATMUL" not in used and "GATHER" in used  # the solve's products unrolled


def test_tflite_matches_tf(tiny_tflite):
    """Every signature on tiny inputs: a driving batch of 3 beside a source of batch 1."""
    from ai_edge_litert.interpreter import Interpreter

    require("tiny.npz")
    oracle = np.load(ORACLE / "tiny.npz")
    functions, files = tiny_tflite
    source, kp_source = nhwc(oracle["source"]), oracle["kp_source_fg_kp"]
    kp = oracle["kp_driving_fg_kp"][2:5]
    encoded = {k: v.numpy() for k, v in functions["generator"][1]["encode_source"](
        source_image=source).items()}
    inputs = {"kp_detector": {"image": nhwc(oracle["driving"][2:5])},
              "process_kp_driving": {"kp_driving": kp, "kp_driving_initial": kp[:1],
                                     "kp_source": kp_source,
                                     "use_relative_movement": np.float32(1)},
              "avd_network": {"kp_source": kp_source, "kp_driving": kp},
              "serving_default": {"source_image": source, "kp_driving": kp,
                                  "kp_source": kp_source},
              "encode_source": {"source_image": source},
              "generate": {"source_image": source, **encoded, "kp_driving": kp,
                           "kp_source": kp_source}}
    errors, expected = {}, {}
    for (model, name), flatbuffer in files.items():
        feed = inputs[model if name == "serving_default" and model != "generator" else name]
        lite = Interpreter(model_content=flatbuffer).get_signature_runner()(**feed)
        graph = functions[model][1][name](**feed)
        assert set(lite) == set(graph), (model, name)
        for key, value in graph.items():
            errors[f"{model}.{name}.{key}"] = float(np.abs(lite[key] - value.numpy()).max())
            expected[f"{model}.{name}.{key}"] = value.numpy()
    assert_within(errors, expected)


@pytest.mark.slow
def test_batch1_files_run_whole_on_the_gpu_delegate(weights):
    """At batch 1 (the static files of runtimes that cannot resize inputs) every op of the
    detector, the AVD network and the generator is one the GPU delegate takes; the
    normalisation leaves to the CPU only ops that FOMM's, whose hull it shares, leaves
    there too."""
    files = converted(model_functions(tf_models(weights, "tiny"), table("tiny")["config"],
                                      (64, 64), batch=1))
    for key, flatbuffer in files.items():
        refused = {r["op"]: r["notes"] for r in op_report(flatbuffer) if r["gpu"] != "yes"}
        if key[0] == "process_kp_driving":
            assert refused and set(refused) <= fomm_normalisation_off_the_gpu()
        else:
            assert not refused, (key, refused)


def fomm_normalisation_off_the_gpu() -> set:
    from fomm_convert.signatures import signatures
    from fomm_convert.spec import load_spec
    from fomm_convert.tf_model.functions import process_kp_function
    from fomm_convert.tf_model.process_kp import ProcessKpDriving

    spec = load_spec("vox")
    process = ProcessKpDriving(spec.num_kp, spec.estimate_jacobian)
    function = process_kp_function(
        process, signatures(spec)["process_kp_driving"]["serving_default"], batch=1)
    return {r["op"] for r in op_report(tflite_model(function, process)) if r["gpu"] != "yes"}
