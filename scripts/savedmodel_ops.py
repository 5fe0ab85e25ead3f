"""Derive what our SavedModel exporter writes, for the gate's allowlists
(converter/bundle/models_check/savedmodel_rules.py): every spec and test config is exported
as `build` exports it (synthetic weights; the graph depends on the architecture only), and
each saved_model.pb is read with TensorFlow's own proto classes, a reader independent of the
gate's. Prints, per place (the graph and the functions outside the checkpoint functions;
the checkpoint functions), each op type with the configs whose files hold it, the
object-graph kinds, user-object identifiers, constants' dtypes, the call ops' runtime
configurations, the nodes' devices and the largest constant of each config, and whether
each file passes the whole gate (models_check.savedmodel.check_savedmodel); exits 1 when
the allowlists miss any or a file fails.

    .venv/bin/python scripts/savedmodel_ops.py [--configs vox,tiny,...]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

from fomm_convert.bundle.models_check import ModelFileError
from fomm_convert.bundle.models_check.savedmodel import check_savedmodel
from fomm_convert.bundle.models_check.savedmodel_rules import (CHECKPOINT_OPS, MODEL_OPS,
                                                               CALL_ATTRS, DEVICES,
                                                               OBJECT_KINDS, TENSOR_DTYPES,
                                                               USER_OBJECTS)
from fomm_convert.checkpoint import checkpoint_from_object
from fomm_convert.export.savedmodel import export_savedmodels
from fomm_convert.signatures import MODELS, signatures
from fomm_convert.spec import load_spec
from fomm_convert.synth import make_checkpoint
from fomm_convert.tf_model.fast import fast_models
from fomm_convert.tf_model.functions import model_functions
from fomm_convert.tf_model.weights import build_tf_models

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["vox", "vox-adv", "taichi", "taichi-adv", "fashion", "mgif", "bair", "nemo"]
TEST_CONFIGS = ["tiny", "tiny-pad", "tiny-single-jac", "tiny-nojac", "tiny-noocc",
                "tiny-512like", "tiny-nonsquare", "vox-512"]


def config_path(name: str) -> str:
    return str(ROOT / "tests" / "fixtures" / "configs" / f"{name}.yaml") \
        if name in TEST_CONFIGS else name


def export(name: str, out: Path):
    """The three SavedModels of a config, as build exports them; (their folder, spec)."""
    spec = load_spec(config_path(name))
    checkpoint = checkpoint_from_object(out / "synthetic.pth.tar", make_checkpoint(spec, 7))
    kp_detector, generator = build_tf_models(spec, checkpoint)
    _, fast_generator = fast_models(kp_detector, generator)
    export_savedmodels(model_functions(spec, kp_detector, fast_generator), out / "savedmodel")
    return out / "savedmodel", spec


def facts(path: Path, found: dict):
    """Add each op type, object kind and identifier of one saved_model.pb to `found`
    ({(place, name): set of files})."""
    model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    meta_graph, = model.meta_graphs
    saver = meta_graph.saver_def
    callers = {saver.save_tensor_name.split(":")[0], saver.restore_op_name}
    checkpoint_functions = {node.attr["f"].func.name for node in meta_graph.graph_def.node
                            if node.name in callers}
    where = str(path)
    for node in meta_graph.graph_def.node:
        found["model", node.op].add(where)
        found["device", node.device].add(where)
    for function in meta_graph.graph_def.library.function:
        place = "checkpoint" if function.signature.name in checkpoint_functions else "model"
        for node in function.node_def:
            found[place, node.op].add(where)
            found["device", node.device].add(where)
            for key, value in node.attr.items():
                for tensor in [value.tensor] * value.HasField("tensor") + list(value.list.tensor):
                    found["dtype", tensor.dtype].add(where)
                    found["size", math.prod(d.size for d in tensor.tensor_shape.dim)].add(where)
                if key in CALL_ATTRS:
                    found["call_attr", (key, value.s)].add(where)
    for node in meta_graph.object_graph_def.nodes:
        kind = node.WhichOneof("kind")
        found["kind", kind].add(where)
        if kind == "user_object":
            found["user_object", node.user_object.identifier].add(where)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default=",".join(SPECS + TEST_CONFIGS))
    args = parser.parse_args()
    found = defaultdict(set)
    configs = [c for c in args.configs.split(",") if c]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in configs:
            root, spec = export(name, Path(tmp) / name)
            for model in MODELS:
                facts(root / model / "saved_model.pb", found)
                try:
                    check_savedmodel(root / model, signatures(spec)[model])
                except ModelFileError as exc:
                    failed.append(str(exc))
            print(f"{name}: exported and gated", file=sys.stderr)
    allowed = {"model": MODEL_OPS, "checkpoint": CHECKPOINT_OPS, "kind": OBJECT_KINDS,
               "user_object": USER_OBJECTS, "dtype": TENSOR_DTYPES,
               "call_attr": set(CALL_ATTRS.items()), "device": DEVICES}
    largest = defaultdict(int)
    for (place, size), files in found.items():
        for config in {Path(f).parts[-4] for f in files} if place == "size" else ():
            largest[config] = max(largest[config], size)
    print("largest constant (values): " + ", ".join(f"{c} {n}" for c, n in
                                                    sorted(largest.items())))
    missing = []
    for (place, name), files in sorted(found.items(), key=str):
        if place == "size":
            continue
        configs_with = sorted({Path(f).parts[-4] for f in files})
        mark = "" if name in allowed[place] else "  NOT ALLOWED"
        missing += [(place, name)] if mark else []
        print(f"{place:12s} {name!s:28s} {len(configs_with):2d} configs{mark}"
              f"{'' if len(configs_with) == len(configs) else ': ' + ', '.join(configs_with)}")
    unused = {(p, n) for p, names in allowed.items() for n in names} - set(found)
    for place, name in sorted(unused, key=str):
        print(f"{place:12s} {name!s:28s} allowed, written by none of these configs")
    for line in failed:
        print(f"gate refuses {line}")
    print(f"{len(configs) * len(MODELS) - len(failed)} of {len(configs) * len(MODELS)} "
          f"SavedModels pass the gate")
    sys.exit(1 if missing or failed else 0)


if __name__ == "__main__":
    main()
