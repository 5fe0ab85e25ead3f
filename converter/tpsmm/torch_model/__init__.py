"""The reference TPSMM in PyTorch: the original's four inference networks, with its
state_dict keys, order and shapes (a checkpoint's bg_predictor is not among them:
architecture.UNUSED_NETWORKS)."""
from __future__ import annotations

from torch import nn

from ...torch_model import load_weights
from ..architecture import NETWORKS
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
    common = model_params["common_params"]
    num_tps, num_channels = common["num_tps"], common["num_channels"]
    if num_channels != 3:
        raise ValueError(f"num_channels {num_channels}: the keypoint detector's resnet18 "
                         "takes 3 (RGB)")
    multi_mask = common.get("multi_mask", True)
    models = {
        "kp_detector": KPDetector(num_tps),
        "dense_motion_network": DenseMotionNetwork(
            num_tps=num_tps, num_channels=num_channels, multi_mask=multi_mask,
            tps_solve=tps_solve, **model_params["dense_motion_params"]),
        "inpainting_network": InpaintingNetwork(
            num_channels=num_channels, multi_mask=multi_mask,
            **model_params["generator_params"]),
        "avd_network": AVDNetwork(num_tps, **model_params["avd_network_params"]),
    }
    return {name: models[name].eval() for name in NETWORKS}


def load_networks(models: dict, state_dicts, what: str) -> dict:
    """Strictly load each network's state dict (numpy arrays) from a mapping that has an
    entry per NETWORKS name; mismatches name every offending key."""
    for name in NETWORKS:
        load_weights(models[name], state_dicts[name], f"{what}: {name}")
    return models
