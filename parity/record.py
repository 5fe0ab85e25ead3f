"""Record the output of every module of a torch run, named like the oracle's intermediates.

Names are `<prefix><module path>`, the root module being `<root>`; a dict output is
stored per key as `<path>:<key>`, a list or tuple output per index as `<path>:<i>`
(nested containers add further `:<key>` parts). Values are copied when the hook fires,
so a later in-place change (the original ResBlock's `out += x`) does not reach them.
Entries are in execution order: a module's entry follows those of the modules it ran.

This is the naming of ../shared/oracle/tiny_intermediates.npz (the original FOMM under
forward hooks), so our torch reference and the TF model's taps can be checked against
it, and against each other, by name.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

ROOT = "<root>"

# Names our torch reference records that the original's run does not, with the reason.
# Parity checks allow these extra names on our side and no others. Keys are module paths
# with their output key, without the prefix.
DOCUMENTED_EXTRAS = {
    f"{ROOT}:deformation": "our generator also returns the dense-motion deformation "
                           "(the original only has it inside dense_motion_network's output)",
}


def flatten_output(name: str, value) -> list[tuple[str, np.ndarray]]:
    """(name, array copy) pairs of a module output: tensors, dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        return [(name, value.detach().to("cpu", copy=True).numpy())]
    if isinstance(value, dict):
        return [pair for key, item in value.items()
                for pair in flatten_output(f"{name}:{key}", item)]
    if isinstance(value, (list, tuple)):
        return [pair for i, item in enumerate(value)
                for pair in flatten_output(f"{name}:{i}", item)]
    return []  # None and other non-tensor outputs are not recorded


def record_torch(module: torch.nn.Module, *args, prefix: str = "",
                 **kwargs) -> "OrderedDict[str, np.ndarray]":
    """Run `module(*args, **kwargs)` without gradients and return every module's output.

    A module that runs more than once gets `#1`, `#2`, ... appended to the path for its
    second, third, ... call (FOMM calls each module once). Hooks are removed afterwards,
    also when the run fails.
    """
    recorded: "OrderedDict[str, np.ndarray]" = OrderedDict()
    calls: dict[str, int] = {}

    def hook_for(path: str):
        def hook(_module, _inputs, output):
            count = calls.get(path, 0)
            calls[path] = count + 1
            name = path if count == 0 else f"{path}#{count}"
            for key, array in flatten_output(prefix + name, output):
                if key in recorded:
                    raise ValueError(f"two recorded outputs are both named {key!r}")
                recorded[key] = array
        return hook

    handles = [sub.register_forward_hook(hook_for(path or ROOT))
               for path, sub in module.named_modules()]
    try:
        with torch.no_grad():
            module(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return recorded
