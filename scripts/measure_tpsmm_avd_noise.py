"""Where TFLite's extra float32 noise in TPSMM's avd mode comes from (issue 21): each stage
of the generator, fed the float64 torch reference's input to it (rounded to float32), run
by the torch reference in float32 (the original's arithmetic), by the TF graph (eager),
and by TFLite (converted as the build converts) with XNNPACK and with the builtin kernels
(BUILTIN_WITHOUT_DEFAULT_DELEGATES), at one thread or those of --threads; each output's max abs distance to the float64
reference's output of that stage.

Stages (the dense motion network at its size h x w, the inpainting at H x W):
  tps_fit      keypoints -> each TPS's theta and control parameters (the 8x8 solves)
  tps_warp     theta and control parameters -> the K TPS grids (x, y)
  warp         the K+1 grids -> the source warped by each (grid_sample at h x w)
  hourglass    hourglass input -> the maps conv's K+1 logits (convs, InstanceNorm, ReLU,
               pools, upsampling)
  softmax      logits -> contribution maps
  blend        contribution maps and the K+1 grids -> deformation (sum_k c_k T_k)
  deform       deformation and source -> `deformed` (bilinear resize to H x W, grid_sample)
  generator    the whole serving_default on the avd keypoints (contribution maps,
               deformation, deformed, prediction)
  generator_exact_grids  the same with the K+1 grids replaced by the float64 reference's
               (rounded): what the frames would be if the TPS evaluation were exact

Inputs: the build's fixed inputs (fixtures.fixed_inputs) at the config's frame shape, the
oracle's seed-7 weights (its make_weights.py), the avd keypoints of the float64 reference
(detector and AVD network in float64) rounded to float32.

    .venv/bin/python scripts/measure_tpsmm_avd_noise.py --checkpoint CK \
        [--config ../shared/oracle-tpsmm/configs/tiny-rect.yaml] [--mode avd] \
        [--stages tps_warp,generator] [--threads 1,2]
"""
from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf
import torch
import torch.nn.functional as F
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.fixtures import fixed_inputs
from fomm_convert.tpsmm.tf_model import build_tf_models
from fomm_convert.tf_model import ops
from fomm_convert.tpsmm.tf_model import tps as tf_tps
from fomm_convert.tpsmm.tf_model.inpainting import deform
from fomm_convert.tpsmm.torch_model import build_models, load_networks
from fomm_convert.tpsmm.torch_model import tps as torch_tps
from fomm_convert.tpsmm.torch_model.normalize import normalize_kp

KERNELS = {"xnnpack": OpResolverType.AUTO,
           "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2))))


def nhwc(t) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(t.detach().numpy(), (0, 2, 3, 1)))


def convert(function, owner: tf.Module) -> bytes:
    """A tf.function (builtin ops only) of owner's variables as a .tflite, converted as
    the build converts (the converter's folding and canonicalisation included)."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], owner)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def lite(model: bytes, inputs: dict, kernels: str, threads: int) -> dict:
    interpreter = Interpreter(model_content=model, num_threads=threads,
                              experimental_op_resolver_type=KERNELS[kernels])
    return interpreter.get_signature_runner()(**inputs)


def spec(a, name):
    return tf.TensorSpec(a.shape, tf.float32, name=name)


class Stages:
    """The float64 reference's stages on one set of keypoints, and the same stages in
    float32 torch, TF and TFLite."""

    def __init__(self, config: dict, networks: dict, source, kp_driving, kp_source):
        self.t64 = {k: v.double() for k, v in load_networks(
            build_models(config), networks, "float64").items()}
        self.t32 = load_networks(build_models(config), networks, "float32")
        self.tf = build_tf_models(config, networks)
        self.owner = tf.Module()
        self.owner.networks = list(self.tf.values())
        self.config, self.source = config, source
        self.kp = {"kp_driving": kp_driving, "kp_source": kp_source}
        self.exact = self._float64()

    def _float64(self) -> dict:
        dm, inp = self.t64["dense_motion_network"], self.t64["inpainting_network"]
        src = nchw(self.source).double()
        kd, ks = (torch.from_numpy(self.kp[k]).double() for k in ("kp_driving", "kp_source"))
        with torch.no_grad():
            down = dm.downsample(src)
            _, _, h, w = down.shape
            b = kd.shape[0]
            theta, params = torch_tps.fit(kd, ks, dm.tps_solve)
            grids = dm.transformations((h, w), kd, theta, params)
            hourglass_in = torch.cat([dm.heatmap_representations((h, w), kd, ks),
                                      dm.deformed_sources(down, grids).view(b, -1, h, w)], 1)
            logits = dm.maps(dm.hourglass(hourglass_in)[-1])
            warped = dm.deformed_sources(down, grids)
            motion = dm.motion(down, kd, ks)
            frames = inp(src, motion)
        return {"hourglass_in": nhwc(hourglass_in), "logits": nhwc(logits),
                "tps_theta": theta.numpy(), "tps_control_params": params.numpy(),
                "source_down": nhwc(down), "warped": warped.numpy(),
                "grids_x": np.transpose(grids[..., 0].numpy(), (0, 2, 3, 1)),
                "grids_y": np.transpose(grids[..., 1].numpy(), (0, 2, 3, 1)),
                "contribution_maps": nhwc(motion["contribution_maps"]),
                "deformation": motion["deformation"].numpy(),
                "deformed": nhwc(frames["deformed"]), "prediction": nhwc(frames["prediction"])}

    def f32(self, *names):
        return [self.exact[n].astype(np.float32) for n in names]

    def stages(self) -> dict:
        """{stage: (inputs {name: float32 array}, tf function of them, torch float32
        function of them, float64 outputs {name: array})}."""
        dm32, inp32 = self.t32["dense_motion_network"], self.t32["inpainting_network"]
        dm, e = self.tf["dense_motion_network"], self.exact
        hg_in, logits, cm, gx, gy, deformation = self.f32(
            "hourglass_in", "logits", "contribution_maps", "grids_x", "grids_y",
            "deformation")
        source = self.source
        theta, params, down = self.f32("tps_theta", "tps_control_params", "source_down")
        h, w = down.shape[1:3]
        kp_driving, kp_source = self.kp["kp_driving"], self.kp["kp_source"]

        def tf_fit(kp_driving, kp_source):
            return dict(zip(("tps_theta", "tps_control_params"),
                            (hi for hi, _ in tf_tps.fit(kp_driving, kp_source))))

        def torch_fit(kp_driving, kp_source):
            return {k: v.numpy() for k, v in zip(
                ("tps_theta", "tps_control_params"), torch_tps.fit(
                    torch.from_numpy(kp_driving), torch.from_numpy(kp_source),
                    dm32.tps_solve))}

        def tf_warp(tps_theta, tps_control_params):  # the K TPS grids of the K+1
            x, y = dm.transformations(h, w, tf.constant(kp_driving), tps_theta,
                                      tps_control_params)
            return {"grids_x": x[..., 1:], "grids_y": y[..., 1:]}

        def torch_warp(tps_theta, tps_control_params):
            t = dm32.transformations((h, w), torch.from_numpy(kp_driving),
                                     torch.from_numpy(tps_theta),
                                     torch.from_numpy(tps_control_params))
            return {"grids_x": np.transpose(t[:, 1:, ..., 0].numpy(), (0, 2, 3, 1)),
                    "grids_y": np.transpose(t[:, 1:, ..., 1].numpy(), (0, 2, 3, 1))}

        def tf_sample(source_down, grids_x, grids_y):
            n = int(grids_x.shape[-1])
            out = ops.grid_sample(ops.tile_to_batch(source_down, tf.shape(grids_x)[0]),
                                  tf.reshape(grids_x, [-1, h, w * n, 1]),
                                  tf.reshape(grids_y, [-1, h, w * n, 1]), True)
            return {"warped": tf.transpose(tf.reshape(out, [-1, h, w, n, 3]),
                                           [0, 3, 4, 1, 2])}

        def torch_sample(source_down, grids_x, grids_y):
            t = torch.from_numpy(np.stack([grids_x, grids_y], -1)).permute(0, 3, 1, 2, 4)
            return {"warped": dm32.deformed_sources(nchw(source_down), t.contiguous()).numpy()}

        def torch_hourglass(hourglass_in):
            return {"logits": nhwc(dm32.maps(dm32.hourglass(nchw(hourglass_in))[-1]))}

        def torch_blend(contribution_maps, grids_x, grids_y):
            t = torch.stack([torch.from_numpy(grids_x), torch.from_numpy(grids_y)], -1)
            t = t.permute(0, 3, 1, 2, 4)  # (B, K+1, h, w, 2)
            c = nchw(contribution_maps)
            return {"deformation": (t.permute(0, 1, 4, 2, 3) * c.unsqueeze(2)).sum(1)
                    .permute(0, 2, 3, 1).numpy()}

        def torch_deform(source_image, deformation):
            return {"deformed": nhwc(inp32.deform(nchw(source_image),
                                                  torch.from_numpy(deformation)))}

        def tf_generator(source_image, kp_driving, kp_source):
            out = self.generator(source_image, kp_driving, kp_source)
            return {k: out[k] for k in ("contribution_maps", "deformation", "deformed",
                                        "prediction")}

        def with_grids(function, network, grids):
            """function with network.transformations returning the given grids."""
            def call(source_image, kp_driving, kp_source, grids_x, grids_y):
                network.transformations = grids(grids_x, grids_y)
                try:
                    return function(source_image, kp_driving, kp_source)
                finally:
                    del network.transformations
            return call

        def torch_grids(grids_x, grids_y):
            t = torch.from_numpy(np.stack([grids_x, grids_y], -1)).permute(0, 3, 1, 2, 4)
            return lambda *_: t.contiguous()

        def torch_generator(source_image, kp_driving, kp_source):
            src = nchw(source_image)
            motion = dm32(src, torch.from_numpy(kp_driving), torch.from_numpy(kp_source))
            frames = inp32(src, motion)
            return {"contribution_maps": nhwc(motion["contribution_maps"]),
                    "deformation": motion["deformation"].numpy(),
                    "deformed": nhwc(frames["deformed"]),
                    "prediction": nhwc(frames["prediction"])}
        frames = {k: e[k] for k in ("contribution_maps", "deformation", "deformed",
                                    "prediction")}
        exact_grids = {"grids_x": e["grids_x"][..., 1:], "grids_y": e["grids_y"][..., 1:]}
        return {
            "tps_fit": ({"kp_driving": kp_driving, "kp_source": kp_source}, tf_fit, torch_fit,
                        {"tps_theta": e["tps_theta"],
                         "tps_control_params": e["tps_control_params"]}),
            "tps_warp": ({"tps_theta": theta, "tps_control_params": params}, tf_warp,
                         torch_warp, exact_grids),
            "warp": ({"source_down": down, "grids_x": gx, "grids_y": gy}, tf_sample,
                     torch_sample, {"warped": e["warped"]}),
            "hourglass": ({"hourglass_in": hg_in},
                          lambda hourglass_in: {"logits": dm.maps(
                              dm.hourglass(hourglass_in)[-1])},
                          torch_hourglass, {"logits": e["logits"]}),
            "softmax": ({"logits": logits},
                        lambda logits: {"contribution_maps": softmax(logits)},
                        lambda logits: {"contribution_maps": nhwc(F.softmax(nchw(logits), 1))},
                        {"contribution_maps": e["contribution_maps"]}),
            "blend": ({"contribution_maps": cm, "grids_x": gx, "grids_y": gy},
                      lambda contribution_maps, grids_x, grids_y: {"deformation": tf.stack(
                          [tf.reduce_sum(grids_x * contribution_maps, -1),
                           tf.reduce_sum(grids_y * contribution_maps, -1)], -1)},
                      torch_blend, {"deformation": e["deformation"]}),
            "deform": ({"source_image": source, "deformation": deformation},
                       lambda source_image, deformation: {"deformed": deform(
                           source_image, deformation)},
                       torch_deform, {"deformed": e["deformed"]}),
            "generator": ({"source_image": source, **self.kp}, tf_generator, torch_generator,
                          frames),
            "generator_exact_grids": (
                {"source_image": source, **self.kp, "grids_x": gx, "grids_y": gy},
                with_grids(tf_generator, dm, lambda x, y: lambda *_: (x, y)),
                with_grids(torch_generator, dm32, torch_grids), frames),
        }

    @property
    def generator(self):
        from fomm_convert.tpsmm.tf_model import Generator
        return Generator(self.tf["dense_motion_network"], self.tf["inpainting_network"])


def softmax(logits):
    return tf.nn.softmax(logits, axis=-1)


def measure(stages: Stages, only=None, threads=(1,)) -> list[tuple]:
    rows = []
    for name, (inputs, tf_fn, torch_fn, exact) in stages.stages().items():
        if only and name not in only:
            continue
        function = tf.function(tf_fn, input_signature=[spec(v, k) for k, v in inputs.items()])
        with torch.no_grad():
            runs = {"original": torch_fn(**inputs),
                    "tf": {k: v.numpy() for k, v in function(**inputs).items()}}
        model = convert(function, stages.owner)
        for n in threads:
            for kernels in KERNELS:
                runs[kernels, n] = lite(model, inputs, kernels, n)
        for key, value in exact.items():
            rows.append((name, key, float(np.abs(value).max()),
                         *(float(np.abs(runs[r][key] - value).max()) for r in runs)))
    return rows


def avd_keypoints(config, networks, source, driving, mode: str):
    """kp_driving for the generator in `mode` and kp_source, from the float64 reference,
    rounded to float32."""
    nets = {k: v.double() for k, v in load_networks(build_models(config), networks,
                                                    "float64").items()}
    with torch.no_grad():
        kp_source = nets["kp_detector"](nchw(source).double())
        kp_driving = nets["kp_detector"](nchw(driving).double())
        if mode == "avd":
            kp = nets["avd_network"](kp_source, kp_driving)
        else:
            kp = normalize_kp(mode, kp_source, kp_driving, kp_driving[:1], None)
    return (kp.numpy().astype(np.float32), kp_source.numpy().astype(np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", default="../shared/oracle-tpsmm/configs/tiny-rect.yaml")
    parser.add_argument("--mode", default="avd", choices=("avd", "relative", "standard"))
    parser.add_argument("--stages", default="", help="comma-separated; default all")
    parser.add_argument("--threads", default="1",
                        help="TFLite's thread counts, comma-separated (e.g. 1,2)")
    args = parser.parse_args()
    import yaml
    config = yaml.safe_load(open(args.config))
    frame = config["dataset_params"]["frame_shape"]
    params = config["model_params"]
    networks = load_checkpoint(args.checkpoint, family="tpsmm").networks
    source, driving = fixed_inputs(frame)
    kp_driving, kp_source = avd_keypoints(params, networks, source, driving, args.mode)
    stages = Stages(params, networks, source, kp_driving, kp_source)
    print(f"{args.config} {args.mode}, frame {frame[:2]}, driving batch {len(kp_driving)}; "
          "max abs from float64")
    threads = [int(n) for n in args.threads.split(",")]
    print(f"{'stage':10} {'array':18} {'|max|':>8} {'original':>9} {'tf':>9} "
          + " ".join(f"{f'{k}@{n}':>9}" for n in threads for k in KERNELS))
    for row in measure(stages, set(filter(None, args.stages.split(","))) or None, threads):
        print(f"{row[0]:10} {row[1]:18} {row[2]:8.3g} "
              + " ".join(f"{v:9.2e}" for v in row[3:]))


if __name__ == "__main__":
    main()
