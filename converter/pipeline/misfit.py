"""A checkpoint that does not fit a spec's models, told in one line: the counts per network
and the first shape mismatches, with the whole weight-table diagnosis written to a file
the line names (it can be hundreds of lines)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..bundle import BundleError


class CheckpointMisfit(BundleError):
    """A checkpoint whose tensors are not the ones a spec's models need."""


def explain_misfit(error, spec, checkpoint) -> CheckpointMisfit:
    """`error` (tf_model.weights.WeightTableError) as a one-line CheckpointMisfit."""
    checkpoint = Path(getattr(checkpoint, "path", checkpoint))
    with tempfile.NamedTemporaryFile("w", prefix=f"fomm-convert-misfit-{spec.name}-",
                                     suffix=".txt", delete=False) as f:
        f.write(f"checkpoint {checkpoint}\nspec {spec.name} ({spec.path})\n\n{error}\n")
    examples = error.examples()
    return CheckpointMisfit(
        f"{checkpoint}: does not fit the spec {spec.name} ({spec.path}): {error.counts()}"
        f"{f' (e.g. {examples})' if examples else ''}; a checkpoint of another dataset or "
        f"size? The whole diagnosis: {f.name}")


def misfit(error: BaseException, spec, checkpoint_path):
    """A one-line CheckpointMisfit for a weight-table error of `build`, else None (the
    `misfit` of every family's convert module whose weights go through the table)."""
    from ..tf_model.weights import WeightTableError
    return explain_misfit(error, spec, checkpoint_path) \
        if isinstance(error, WeightTableError) else None
