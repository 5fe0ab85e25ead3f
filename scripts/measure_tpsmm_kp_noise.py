"""Where the TPSMM keypoint detector's float32 error from float64 comes from (issue 21): the
detector split at each layer L, the float64 torch reference's activation at L rounded to
float32 and run from there to the keypoints in float32 by the torch reference (the
original's arithmetic), the TF graph (eager, what the SavedModel runs), TFLite (converted
as the build converts, XNNPACK, one thread) and onnxruntime (the torch reference traced);
each keypoint array's max abs distance to the float64 reference's keypoints. The row of L
is the error of everything after L; the difference between two rows, that of the layers
between them. `head` rows split the head: avgpool (pool -> keypoints), fc (logits ->
keypoints: the sigmoid alone).

    .venv/bin/python scripts/measure_tpsmm_kp_noise.py --checkpoint CK \
        [--config ../shared/oracle-tpsmm/configs/tiny-rect.yaml] \
        [--inputs ../shared/oracle-tpsmm/tiny-rect.npz]
"""
from __future__ import annotations

import argparse
import copy
import io

import numpy as np
import tensorflow as tf
import torch
import yaml
from ai_edge_litert.interpreter import Interpreter

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.tpsmm.tf_model import build_tf_models
from fomm_convert.tpsmm.tf_model import resnet
from fomm_convert.tpsmm.tf_model.resnet import max_pool3x3s2
from fomm_convert.tpsmm.torch_model import build_models, load_networks
from fomm_convert.tpsmm.torch_model.keypoint_detector import exported_head


def split_points() -> list[str]:
    """The torch module paths (of fg_encoder) the detector is split at, in order."""
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    return ["input", "maxpool", *blocks]


def _body(stage, points, i, x, first):
    """x from split point i through the blocks after it (first: the stem)."""
    if i == 0:
        x = first(x)
    for name in points[max(i, 1) + 1:]:
        layer, block = name.split(".")
        x = stage(layer, block)(x)
    return x


def torch_tail(detector, start: str, exported: bool):
    """detector from the output of `start` to (layer4's output, keypoints), NCHW: the
    original's float32 head, or (exported) the ONNX file's double-float one."""
    enc, points = detector.fg_encoder, split_points()

    def run(x):
        body = _body(lambda layer, block: getattr(enc, layer)[int(block)], points,
                     points.index(start), x,
                     lambda x: enc.maxpool(enc.relu(enc.bn1(enc.conv1(x)))))
        if exported:
            return body, exported_head(detector, body)
        logits = enc.fc(torch.flatten(enc.avgpool(body), 1))
        return body, (torch.sigmoid(logits) * 2 - 1).view(len(x), -1, 2)
    return run


def tf_tail(detector, start: str):
    """The TF graph from the output of `start` to layer4's output and the keypoints, NHWC."""
    enc, points = detector.fg_encoder, split_points()

    def run(x):
        body = _body(lambda layer, block: getattr(getattr(enc, layer), block), points,
                     points.index(start), x,
                     lambda x: max_pool3x3s2(tf.nn.relu(enc.bn1(enc.conv1(x)))))
        return {"body": body, "keypoints": detector.head(body)}
    return run


def float64_activations(detector, image: torch.Tensor) -> dict:
    """{split point: float64 activation}, keypoints under 'keypoints'."""
    enc, out = detector.fg_encoder, {"input": image}
    hooks = [getattr(enc, p.split(".")[0])[int(p.split(".")[1])].register_forward_hook(
        lambda m, i, o, p=p: out.__setitem__(p, o)) for p in split_points()[2:]]
    hooks.append(enc.maxpool.register_forward_hook(
        lambda m, i, o: out.__setitem__("maxpool", o)))
    with torch.no_grad():
        out["keypoints"] = detector(image)
    for hook in hooks:
        hook.remove()
    return out


def nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1))) if a.ndim == 4 else a


def tflite_run(function, owner, x: np.ndarray) -> np.ndarray:
    concrete = function.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], owner)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
    out = interpreter.get_signature_runner()(x=x)
    return out["body"], out["keypoints"]


def onnx_run(detector, start: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime
    buffer = io.BytesIO()
    torch.onnx.export(_Tail(detector, start), (torch.from_numpy(x),), buffer, opset_version=17,
                      input_names=["x"], dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(buffer.getvalue(), options,
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


class _Tail(torch.nn.Module):
    def __init__(self, detector, start: str):
        super().__init__()
        self.detector, self.start = detector, start

    def forward(self, x):
        return torch_tail(self.detector, self.start, exported=True)(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", default="../shared/oracle-tpsmm/configs/tiny-rect.yaml")
    parser.add_argument("--inputs", default="../shared/oracle-tpsmm/tiny-rect.npz")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--chunk", type=int, default=resnet.CHUNK,
                        help="the TF detector's convolutions summed over this many input "
                             "channels at a time (tpsmm/tf_model/resnet.py's CHUNK, the "
                             "default); 0: in one sum")
    args = parser.parse_args()
    params = yaml.safe_load(open(args.config))["model_params"]
    networks = load_checkpoint(args.checkpoint, family="tpsmm").networks
    data = np.load(args.inputs)
    images = np.concatenate([data["source"], data["driving"]]).astype(np.float32)
    t64 = load_networks(build_models(params), networks, "float64")["kp_detector"].double()
    t32 = load_networks(build_models(params), networks, "float32")["kp_detector"]
    resnet.CHUNK = args.chunk or 1 << 30
    tf_detector = build_tf_models(params, networks)["kp_detector"]
    for module in (t64, t32):
        module.eval()
    exact = float64_activations(t64, torch.from_numpy(images).double())
    truth = exact["keypoints"].numpy()
    print(f"{args.config}: {len(images)} images; keypoints' max abs from float64 "
          "(the original's recorded: "
          f"{np.abs(np.concatenate([data['kp_source_fg_kp'], data['kp_driving_fg_kp']]) - truth).max():.2e})")
    fc = t64.fg_encoder.fc
    weight, bias = fc.weight.detach().numpy(), fc.bias.detach().numpy()

    def exact_head(body: np.ndarray, layout: str) -> np.ndarray:
        """float64 head (pool, fc, 2 sigmoid - 1) of a float32 body's layer4 output."""
        pooled = body.astype(np.float64).mean((2, 3) if layout == "nchw" else (1, 2))
        logits = pooled @ weight.T + bias
        return (2 / (1 + np.exp(-logits)) - 1).reshape(len(body), -1, 2)

    names = ["original", "tf", "tflite"] + ([] if args.no_onnx else ["onnx"])
    print("max abs from float64 of the keypoints: from the split point as each computes "
          "them | its blocks, then a float64 head")
    print(f"{'float32 from':12} " + " ".join(f"{n:>9}" for n in names) + " | "
          + " ".join(f"{n:>9}" for n in names))
    for start in split_points():
        x32 = exact[start].numpy().astype(np.float32)
        with torch.no_grad():
            runs = [(*(t.numpy() for t in torch_tail(t32, start, exported=False)(
                torch.from_numpy(x32))), "nchw")]
        x_tf = nhwc(x32)
        function = tf.function(tf_tail(tf_detector, start),
                               input_signature=[tf.TensorSpec(x_tf.shape, tf.float32, "x")])
        out = function(x_tf)
        runs.append((out["body"].numpy(), out["keypoints"].numpy(), "nhwc"))
        runs.append((*tflite_run(function, tf_detector, x_tf), "nhwc"))
        if not args.no_onnx:
            # a copy: the ONNX export left the module it traced computing other values
            runs.append((*onnx_run(copy.deepcopy(t32), start, x32), "nchw"))
        full = [np.abs(kp - truth).max() for _, kp, _ in runs]
        body = [np.abs(exact_head(b, layout) - truth).max() for b, _, layout in runs]
        print(f"{start:12} " + " ".join(f"{v:9.2e}" for v in full) + " | "
              + " ".join(f"{v:9.2e}" for v in body))


if __name__ == "__main__":
    main()
