"""The TPS solve's error against float64, by condition number: the original's
torch.inverse then matmul, and the exported graphs' unrolled elimination
(converter/tpsmm/tps_solve.py), both in float32 on the same float32 systems.

Systems: the oracle's recorded TPS matrices (every case and mode in ../shared/oracle-tpsmm,
right-hand sides from its source keypoints), random control points in [-1, 1]^2, and
control points moved out of collinear and coincident sets to a chosen cond(L)
(converter/tpsmm/conditioning.py), up to singular in float64. Error of a system: max|x -
x64| / max|x64|, x64 = numpy's float64 solve of the same float32 L and Y; also in units of
cond(L) * 2**-24. Rows are grouped by cond(L) of the float32 L, computed in float64.

    .venv/bin/python scripts/measure_tps_solve.py [--count 40] [--seed 0]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fomm_convert.tpsmm.conditioning import KINDS, near_singular
from fomm_convert.tpsmm.torch_model.tps import TORCH, system_matrix
from fomm_convert.tpsmm.tps_solve import solve

ORACLE = Path(__file__).resolve().parent.parent.parent / "shared" / "oracle-tpsmm"
UNIT = 2.0 ** -24
TARGETS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, None)
SOLVERS = ("torch.inverse", "elimination")


def oracle_systems():
    """(L, Y) float32 of every recorded TPS system: (n, 8, 8), (n, 8, 2)."""
    lhs, rhs = [], []
    for case in ("tiny", "tiny-rect", "vox-256"):
        data = np.load(ORACLE / f"{case}.npz")
        source = data["kp_source_fg_kp"].reshape(1, -1, 5, 2)
        for mode in ("relative", "standard", "avd"):
            matrices = data[f"{mode}_tps_L"]  # (G, K, 8, 8)
            lhs.append(matrices.reshape(-1, 8, 8))
            y = np.concatenate([source, np.zeros((1, source.shape[1], 3, 2), np.float32)], 2)
            rhs.append(np.broadcast_to(y, (*matrices.shape[:2], 8, 2)).reshape(-1, 8, 2))
    return np.concatenate(lhs), np.concatenate(rhs)


def built_systems(points: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """(L, Y) float32 from control points (n, 5, 2): L as the original builds it in
    float32, Y = [random source points in [-1, 1]; 0]."""
    lhs = system_matrix(torch.from_numpy(points)[:, None]).numpy()[:, 0]
    source = rng.uniform(-1, 1, (len(points), 5, 2)).astype(np.float32)
    rhs = np.concatenate([source, np.zeros((len(points), 3, 2), np.float32)], 1)
    return lhs, rhs


def solutions(lhs: np.ndarray, rhs: np.ndarray) -> dict:
    """Each solver's float32 x (n, 8, 2); NaN where torch.inverse raises (an exactly
    singular L: its LU met a zero pivot)."""
    lt, yt = torch.from_numpy(lhs)[:, None], torch.from_numpy(rhs)[:, None]
    inverse, info = torch.linalg.inv_ex(lt)
    original = torch.matmul(inverse, yt)[:, 0].numpy().copy()
    original[info[:, 0].numpy() != 0] = np.nan
    return {"torch.inverse": original, "elimination": solve(lt, yt, TORCH)[:, 0].numpy()}


def _maxabs(x: np.ndarray) -> np.ndarray:
    return np.abs(x).reshape(len(x), -1).max(1)


def errors(lhs, rhs) -> tuple[np.ndarray, dict, dict]:
    """cond(L), each solver's relative error per system (NaN where it raises, inf where
    not finite) and the largest |x| of the float64 solution and of the elimination's."""
    l64, y64 = lhs.astype(np.float64), rhs.astype(np.float64)
    cond = np.linalg.cond(l64)
    truth = np.linalg.solve(l64, y64)
    out = {}
    found = solutions(lhs, rhs)
    for name, x in found.items():
        err = _maxabs(x - truth) / _maxabs(truth)
        raised = np.isnan(x).reshape(len(x), -1).all(1)
        finite = np.isfinite(x).reshape(len(x), -1).all(1)
        out[name] = np.where(raised, np.nan, np.where(finite, err, np.inf))
    return cond, out, {"float64": _maxabs(truth), "elimination": _maxabs(found["elimination"])}


def table(groups: list[tuple[str, np.ndarray, dict, dict]]) -> str:
    head = ("| systems | n | cond(L) | max abs x: float64 / elimination | " + " | ".join(
        f"{s}: error median / max | max error / (cond u)" for s in SOLVERS) + " |")
    lines = [head, "|" + "---|" * (4 + 2 * len(SOLVERS))]
    for label, cond, errs, sizes in groups:
        cells = [label, str(len(cond)), f"{cond.min():.1e} - {cond.max():.1e}",
                 f"{sizes['float64'].max():.1e} / {sizes['elimination'].max():.1e}"]
        for s in SOLVERS:
            e = errs[s]
            finite = np.isfinite(e)
            worst = f"{e[finite].max():.1e}" if finite.any() else "-"
            for count, what in ((np.isnan(e).sum(), "raise"), (np.isinf(e).sum(), "not finite")):
                worst += f" ({count} {what})" if count else ""
            cells += [f"{np.median(e[finite]):.1e} / {worst}",
                      f"{(e[finite] / (cond[finite] * UNIT)).max():.2f}" if finite.any() else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def singular_cases() -> dict:
    """L exactly singular in float32: what each solver gives."""
    rng = np.random.default_rng(5)
    zero = np.zeros((8, 8), np.float32)
    twin = rng.normal(size=(8, 8)).astype(np.float32)
    twin[3] = twin[2]
    rhs = np.concatenate([rng.uniform(-1, 1, (5, 2)), np.zeros((3, 2))]).astype(np.float32)
    out = {}
    for label, lhs in (("zero L", zero), ("two equal rows", twin)):
        x = solutions(lhs[None], rhs[None])
        out[label] = {s: "singular (raises)" if np.isnan(v).all() else
                      f"finite, max|x| {np.abs(v).max():.2g}" if np.isfinite(v).all() else
                      "not finite" for s, v in x.items()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="systems per target cond")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    groups = []
    if ORACLE.exists():
        groups.append(("oracle (3 cases x 3 modes)", *errors(*oracle_systems())))
    random = rng.uniform(-1, 1, (20 * args.count, 5, 2)).astype(np.float32)
    groups.append(("uniform in [-1, 1]^2", *errors(*built_systems(random, rng))))
    for kind in KINDS:
        for target in TARGETS:
            points = np.stack([near_singular(rng, kind, target) for _ in range(args.count)])
            label = f"{kind}, {'singular in float64' if target is None else f'cond {target:.0e}'}"
            groups.append((label, *errors(*built_systems(points, rng))))
    print(table(groups))
    print()
    for label, verdicts in singular_cases().items():
        print(f"{label}: " + "; ".join(f"{s}: {v}" for s, v in verdicts.items()))


if __name__ == "__main__":
    main()
