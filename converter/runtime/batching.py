"""Calls of any batch on artifacts whose batch is fixed at 1 (the static TFLite files).

A call is split into one call per driving example: inputs of the DRIVING role are sliced,
SOURCE-role inputs of batch 1 are passed to every call (and of batch N, sliced), scalar
flags passed as they are; the outputs are concatenated along the batch.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..signatures import DRIVING, SOURCE, Signature

Arrays = dict[str, np.ndarray]


def call_batch(signature: Signature, inputs: Arrays) -> int:
    """The batch of a call's outputs: its driving inputs' (they share one), else its
    largest source-role input's; 1 for a call of scalar flags alone."""
    driving = [len(inputs[t.name]) for t in signature.inputs
               if t.batch == DRIVING and t.name in inputs]
    return driving[0] if driving else max(
        (len(inputs[t.name]) for t in signature.inputs
         if t.batch is not None and t.name in inputs), default=1)


def check_shapes(signature: Signature, inputs: Arrays, max_batch: int) -> int:
    """The call's batch N, once every input has the contract's shape: driving inputs of
    batch N, source inputs of batch 1 or N (one for a group), 1 <= N <= max_batch, flags
    scalars (a file's shapes are proven for these calls only: bundle/models_check).
    ValueError otherwise."""
    batch = call_batch(signature, inputs)
    if not 1 <= batch <= max_batch:
        raise ValueError(f"{signature.model} {signature.name}: a batch of {batch} (it takes "
                         f"1 to {max_batch})")
    groups = {}
    for t in signature.inputs:
        shape = tuple(np.shape(inputs[t.name]))
        allowed = [tuple(t.full_shape(b)) for b in ((1, batch) if t.batch == SOURCE else
                                                      (batch,))]
        if shape not in allowed:
            raise ValueError(f"{signature.model} {signature.name}: {t.name} has shape "
                             f"{list(shape)}, not {' or '.join(str(list(a)) for a in allowed)}")
        if t.batch == SOURCE:
            first = groups.setdefault(t.group or t.name, (t.name, shape[0]))
            if first[1] != shape[0]:
                raise ValueError(f"{signature.model} {signature.name}: {first[0]} has batch "
                                 f"{first[1]} and {t.name} {shape[0]}; one call made both")
    return batch


def call_per_example(call_one: Callable[[Arrays], Arrays], signature: Signature,
                     inputs: Arrays) -> Arrays:
    """call_one(batch-1 inputs) -> outputs, applied to each example of `inputs`."""
    batches = {t.name: len(inputs[t.name]) for t in signature.inputs
               if t.batch is not None and t.name in inputs}
    driving = {batches[t.name] for t in signature.inputs if t.batch == DRIVING
               and t.name in batches}
    if len(driving) > 1:
        raise ValueError(f"{signature.model} {signature.name}: driving inputs of different "
                         f"batches {sorted(driving)}")
    count = call_batch(signature, inputs)
    for t in signature.inputs:
        if t.batch == SOURCE and batches.get(t.name) not in (1, count):
            raise ValueError(f"{signature.model} {signature.name}: {t.name} has batch "
                             f"{batches[t.name]}; it takes 1 or the driving batch {count}")
        if (signature.model == "process_kp_driving" and t.batch == SOURCE
                and batches.get(t.name, 1) != 1):
            # The movement scale is one number from element 0 of kp_source and of
            # kp_driving_initial; per-example calls could not keep it.
            raise ValueError(f"{signature.model}: with static shapes {t.name} takes "
                             f"batch 1, not {batches[t.name]}")
    results = []
    for n in range(count):
        one = {}
        for t in signature.inputs:
            if t.name not in inputs:
                continue
            value = inputs[t.name]
            sliced = t.batch is not None and not (t.batch == SOURCE and batches[t.name] == 1)
            one[t.name] = value[n:n + 1] if sliced else value
        results.append(call_one(one))
    return {key: np.concatenate([r[key] for r in results]) for key in results[0]}
