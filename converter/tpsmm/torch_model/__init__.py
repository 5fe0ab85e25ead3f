"""The reference TPSMM in PyTorch: the original's four inference networks, with its
state_dict keys, order and shapes (a checkpoint's bg_predictor is not among them:
architecture.UNUSED_NETWORKS)."""
from __future__ import annotations

from torch import nn

from ...torch_model import load_weights
from ..architecture import NETWORKS, network_arguments
from .avd import AVDNetwork
from .dense_motion import DenseMotionNetwork
from .inpainting import InpaintingNetwork
from .keypoint_detector import KPDetector
from .normalize import MODES, normalize_kp
from .tps import TPS_SOLVES

__all__ = ["AVDNetwork", "DenseMotionNetwork", "InpaintingNetwork", "KPDetector", "MODES",
           "TPS_SOLVES", "build_models", "load_networks", "normalize_kp"]


def build_models(model_params: dict, tps_solve: str = "inverse") -> dict[str, nn.Module]:
    """The networks of an original config's model_params (as demo.load_checkpoints builds
    them), in eval mode with default initialisation, keyed as in checkpoints (NETWORKS)."""
    arguments = network_arguments(model_params)
    arguments["dense_motion_network"]["tps_solve"] = tps_solve
    classes = {"kp_detector": KPDetector, "dense_motion_network": DenseMotionNetwork,
               "inpainting_network": InpaintingNetwork, "avd_network": AVDNetwork}
    return {name: classes[name](**arguments[name]).eval() for name in NETWORKS}


def load_networks(models: dict, state_dicts, what: str) -> dict:
    """Strictly load each network's state dict (numpy arrays) from a mapping that has an
    entry per NETWORKS name; mismatches name every offending key."""
    for name in NETWORKS:
        load_weights(models[name], state_dicts[name], f"{what}: {name}")
    return models
