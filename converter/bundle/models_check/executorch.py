"""The ExecuTorch files of a bundle (executorch/*.pte) against what our exporter writes, read
with our own flatbuffer reader (bundle/pte_file.py) before ExecuTorch's runtime parses them:

- the folder holds exactly the exporter's files, each a well-formed program (ET12, its
  extended header, every offset inside the file);
- two methods: `forward` and the metadata's constant method;
- `forward` takes and gives the signature's tensors at batch 1 (the runtime sizes its
  buffers from the file's shapes);
- its kernels are among the portable ones our exporter leaves outside XNNPACK (a runtime
  resolves any name a file gives from its kernel registry), its delegates XNNPACK's only;
- every delegate blob, constant and named datum lies inside the file: no tensor takes data
  from another file, no segment reaches past the end.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

from ...errors import shown
from ...families import family_of
from ...formats import EXECUTORCH_FOLDER, EXECUTORCH_METADATA_METHOD, executorch_files
from ..pte_file import INLINE, SEGMENT, PteError, read_pte
from . import ModelFileError, expect_files, folder_files

# The portable kernels of our exports (every spec): the rest runs in XNNPACK.
KERNELS = frozenset({
    "aten::_softmax.out", "aten::add.out", "aten::amax.out", "aten::amin.out",
    "aten::arange.start_out", "aten::bitwise_and.Tensor_out", "aten::bitwise_not.out",
    "aten::bitwise_or.Tensor_out", "aten::eq.Tensor_out", "aten::expand_copy.out",
    "aten::full.out", "aten::full_like.out", "aten::grid_sampler_2d.out",
    "aten::gt.Scalar_out", "aten::gt.Tensor_out", "aten::le.Scalar_out", "aten::mul.out",
    "aten::neg.out", "aten::reciprocal.out", "aten::remainder.Tensor_out", "aten::repeat.out",
    "aten::round.out", "aten::select_copy.int_out", "aten::slice_copy.Tensor_out",
    "aten::sub.out", "aten::sum.IntList_out", "aten::unsqueeze_copy.out",
    "aten::upsample_nearest2d.vec_out", "aten::where.self_out",
    "dim_order_ops::_clone_dim_order.out", "dim_order_ops::_to_dim_order_copy.out"})
DELEGATE = "XnnpackBackend"
METHODS = ("forward", EXECUTORCH_METADATA_METHOD)


def check_format(bundle: Path, spec, fmt) -> None:
    folder = bundle / EXECUTORCH_FOLDER
    files = folder_files(bundle, EXECUTORCH_FOLDER)
    names = executorch_files(family_of(spec))
    expect_files(folder, files, names.values())
    contracts = family_of(spec).signatures(spec)
    for (model, signature), name in names.items():
        check_pte_file(folder / name, contracts[model][signature])


def read_facts(path: Path, error=ModelFileError):
    """read_pte of a file, or an `error` naming it."""
    try:
        with open(path, "rb") as f:
            if not os.fstat(f.fileno()).st_size:  # mmap takes no empty file
                return read_pte(b"")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return read_pte(data)
    except (PteError, OSError) as exc:
        raise error(f"{path}: not a readable ExecuTorch program ({exc})") from None


def check_pte_file(path: Path, contract, facts=None):
    """One .pte against its signature's contract; returns its facts."""
    facts = facts or read_facts(path)
    plans = {plan.name: plan for plan in facts.plans}
    if sorted(plans) != sorted(METHODS) or len(facts.plans) != len(METHODS):
        raise ModelFileError(f"{path}: methods {[shown(p.name) for p in facts.plans]}, not "
                             f"{list(METHODS)}")
    forward = plans["forward"]
    for side, found, tensors in (("inputs", forward.inputs, contract.inputs),
                                 ("outputs", forward.outputs, contract.outputs)):
        expected = [list(t.full_shape(1)) for t in tensors]
        if found != expected:
            raise ModelFileError(f"{path}: forward's {side} are {found}, not {expected}")
    for plan in facts.plans:
        where = f"{path}: method {shown(plan.name)}"
        unknown = sorted(set(plan.operators) - KERNELS)
        if unknown:
            raise ModelFileError(f"{where}: kernel {shown(unknown[0])} is not one our "
                                 f"exporter emits")
        if plan.external:
            raise ModelFileError(f"{where}: tensor {shown(plan.external[0])} takes its data "
                                 f"from another file")
        for delegate, location, index in plan.delegates:
            if delegate != DELEGATE:
                raise ModelFileError(f"{where}: delegate {shown(delegate)} (ours: {DELEGATE})")
            count = {INLINE: facts.delegate_data, SEGMENT: len(facts.segments)}.get(location, 0)
            if not index < count:
                raise ModelFileError(f"{where}: its {DELEGATE} blob ({location}, {index}) is "
                                     f"not in the file")
    _check_segments(path, facts)
    return facts


def _check_segments(path: Path, facts):
    for index, (offset, size) in enumerate(facts.segments):
        if offset + size > facts.segment_space:
            raise ModelFileError(f"{path}: segment {index} ({offset}+{size} bytes) lies "
                                 f"outside the file's {facts.segment_space} bytes of segments")
    referenced = [("named data " + shown(key), index) for key, index in facts.named_data]
    if facts.constant_segment is not None:
        referenced.append(("the constant segment", facts.constant_segment))
    for what, index in referenced:
        if not index < len(facts.segments):
            raise ModelFileError(f"{path}: {what} is in segment {index} of "
                                 f"{len(facts.segments)}")
    if facts.mutable_segments:
        raise ModelFileError(f"{path}: mutable data segments (ours have none)")


def metadata_text(facts) -> str | None:
    """The metadata method's JSON text (None when it returns no string)."""
    plan = next((p for p in facts.plans if p.name == EXECUTORCH_METADATA_METHOD), None)
    return plan.strings[0] if plan is not None and len(plan.strings) == 1 else None
