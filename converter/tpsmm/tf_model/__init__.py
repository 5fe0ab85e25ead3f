"""The TPSMM inference graph in TensorFlow (NHWC, float32, TFLite builtin ops only, every
tensor at most 4-D, no int64, grid_sample as FOMM's 1-D int32 gathers).

Each network is a tf.Module whose attribute tree mirrors the torch reference's
(converter/tpsmm/torch_model), so that a variable's dotted path reads like the torch
state_dict key it is loaded from, and each module taps its output under its torch path
(per-layer parity). build_tf_models fills them from a checkpoint through
weight_table.yaml.
"""
from __future__ import annotations

from pathlib import Path

from ...tf_model.weights import apply_networks, load_entry_rules, load_table
from ..architecture import NETWORKS, network_arguments
from .avd import AVDNetwork
from .dense_motion import DenseMotionNetwork
from .generator import Generator
from .inpainting import InpaintingNetwork
from .keypoint_detector import KPDetector
from .normalize import ProcessKpDriving

__all__ = ["AVDNetwork", "DenseMotionNetwork", "Generator", "InpaintingNetwork",
           "KPDetector", "ProcessKpDriving", "TABLE_PATH", "build_models", "build_tf_models"]

TABLE_PATH = Path(__file__).resolve().parent / "weight_table.yaml"
CLASSES = {"kp_detector": KPDetector, "dense_motion_network": DenseMotionNetwork,
           "inpainting_network": InpaintingNetwork, "avd_network": AVDNetwork}


def build_models(model_params: dict) -> dict:
    """The four TF networks of an original config's model_params, keyed as in checkpoints
    (NETWORKS), every variable zero until weights are applied."""
    arguments = network_arguments(model_params)
    return {name: CLASSES[name](**arguments[name]) for name in NETWORKS}


def build_tf_models(model_params: dict, entries, *, return_reports: bool = False):
    """The four networks with a checkpoint's weights: entries maps the checkpoint's
    top-level names to the networks' state dicts (numpy arrays); its other entries
    (bg_predictor, optimizer state, epoch) must be dropped by the table's entry rules.
    Every problem is raised at once (WeightTableError). With return_reports, also
    {entry: WeightReport}."""
    models = build_models(model_params)
    reports = apply_networks(models, entries, load_table(TABLE_PATH),
                             load_entry_rules(TABLE_PATH))
    return (models, reports) if return_reports else models
