"""Derive what our SavedModel exporter writes, for the gate's allowlists
(converter/bundle/models_check/savedmodel_rules.py): every spec and test config is exported
as `build` exports it (synthetic weights; the graph depends on the architecture only), and
each saved_model.pb is read with TensorFlow's own proto classes, a reader independent of the
gate's. Prints, per place (the graph and the functions outside the checkpoint functions;
the checkpoint functions), each op type with the configs whose files hold it, and the
object-graph kinds and user-object identifiers; exits 1 when the allowlists miss any.

    .venv/bin/python scripts/savedmodel_ops.py [--configs vox,tiny,...]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

from fomm_convert.bundle.models_check.savedmodel_rules import (CHECKPOINT_OPS, MODEL_OPS,
                                                               OBJECT_KINDS, USER_OBJECTS)
from fomm_convert.checkpoint import checkpoint_from_object
from fomm_convert.export.savedmodel import export_savedmodels
from fomm_convert.signatures import MODELS
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


def export(name: str, out: Path) -> Path:
    """The three SavedModels of a config, as build exports them."""
    spec = load_spec(config_path(name))
    checkpoint = checkpoint_from_object(out / "synthetic.pth.tar", make_checkpoint(spec, 7))
    kp_detector, generator = build_tf_models(spec, checkpoint)
    _, fast_generator = fast_models(kp_detector, generator)
    export_savedmodels(model_functions(spec, kp_detector, fast_generator), out / "savedmodel")
    return out / "savedmodel"


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
    for function in meta_graph.graph_def.library.function:
        place = "checkpoint" if function.signature.name in checkpoint_functions else "model"
        for node in function.node_def:
            found[place, node.op].add(where)
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
    with tempfile.TemporaryDirectory() as tmp:
        for name in configs:
            root = export(name, Path(tmp) / name)
            for model in MODELS:
                facts(root / model / "saved_model.pb", found)
            print(f"{name}: exported", file=sys.stderr)
    allowed = {"model": MODEL_OPS, "checkpoint": CHECKPOINT_OPS, "kind": OBJECT_KINDS,
               "user_object": USER_OBJECTS}
    missing = []
    for (place, name), files in sorted(found.items()):
        configs_with = sorted({Path(f).parts[-4] for f in files})
        mark = "" if name in allowed[place] else "  NOT ALLOWED"
        missing += [(place, name)] if mark else []
        print(f"{place:12s} {name:28s} {len(configs_with):2d} configs{mark}"
              f"{'' if len(configs_with) == len(configs) else ': ' + ', '.join(configs_with)}")
    unused = {(p, n) for p, names in allowed.items() for n in names} - set(found)
    for place, name in sorted(unused):
        print(f"{place:12s} {name:28s} allowed, written by none of these configs")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
