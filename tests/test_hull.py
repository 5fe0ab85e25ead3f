"""Convex-hull area, the measure behind adapt-movement-scale, in all three implementations:
in the TF graph, in the torch graph exported to ONNX (exact integer predicates), and on the
host (numpy). Each against scipy's ConvexHull, which the original uses."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
from scipy.spatial import ConvexHull, QhullError

from fomm_convert import hull as host_hull
from fomm_convert.tf_model import process_kp as tf_hull
from fomm_convert.torch_model import process_kp as torch_hull


def scipy_area(points) -> float:
    """The original's measure (ConvexHull.volume, float64); 0 where qhull finds no 2-D hull."""
    try:
        return ConvexHull(np.asarray(points, np.float64)).volume
    except QhullError:
        return 0.0


def _tf(points):
    return tf_hull.hull_area(tf.constant(points)).numpy()


def _torch(points):
    return torch_hull.hull_area(torch.from_numpy(points.copy())).numpy()


def _host(points):
    return np.array([host_hull.convex_hull_area(p) for p in points], np.float32)


@pytest.fixture(params=["tf", "torch", "host"])
def areas(request):
    implementation = {"tf": _tf, "torch": _torch, "host": _host}[request.param]

    def run(points) -> np.ndarray:
        out = implementation(np.ascontiguousarray(points, np.float32))
        assert out.dtype == np.float32 and np.isfinite(out).all()
        return out
    return run


@pytest.mark.parametrize("num_points", [3, 5, 10, 15])
def test_matches_scipy_on_random_points(areas, num_points):
    rng = np.random.default_rng([11, num_points])
    points = rng.uniform(-1, 1, (200, num_points, 2)).astype(np.float32)
    want = np.array([scipy_area(p) for p in points])
    relative = np.abs(areas(points) - want) / want
    assert relative.max() <= 1e-6, relative.max()


def test_clustered_points_away_from_the_origin(areas):
    rng = np.random.default_rng(5)
    points = (0.8 + 0.01 * rng.standard_normal((50, 10, 2))).astype(np.float32)
    want = np.array([scipy_area(p) for p in points])
    assert np.abs(areas(points) - want).max() <= 1e-6 * want.min()


def test_points_rounded_onto_hull_edges(areas):
    # Points placed on hull edges and rounded to float32 lie a hair inside or outside;
    # float orientation tests disagree about such near-collinear triples (the hull then
    # loses or doubles an edge: errors of 0.1-0.5 were seen), exact ones do not.
    rng = np.random.default_rng(3)
    points = rng.uniform(-1, 1, (300, 8, 2)).astype(np.float32)
    for p in points:
        hull = ConvexHull(p.astype(np.float64)).vertices
        inner = [i for i in range(len(p)) if i not in hull]
        a, b = p[hull[0]], p[hull[1]]
        for i in inner[:3]:
            p[i] = a + np.float32(rng.uniform()) * (b - a)
    want = np.array([scipy_area(p) for p in points])
    assert np.abs(areas(points) - want).max() <= 1e-6 * want.min()


def test_lattice_with_collinear_and_repeated_points(areas):
    rng = np.random.default_rng(17)
    for num_points in (3, 5, 10):
        points = (rng.integers(-3, 4, (200, num_points, 2)) / 4).astype(np.float32)
        want = np.array([scipy_area(p) for p in points])
        np.testing.assert_array_equal(areas(points), want.astype(np.float32))


DEGENERATE = {
    "collinear": ([[0, 0], [0.25, 0.5], [0.5, 1], [-0.5, -1], [0.125, 0.25]], 0.0),
    "collinear_vertical": ([[0.3, 0], [0.3, -0.75], [0.3, 0.5]], 0.0),
    "collinear_with_duplicates": ([[0, 0], [0.5, 0.5], [0, 0], [-0.25, -0.25], [0.5, 0.5]],
                                  0.0),
    "identical": ([[0.3, -0.2]] * 5, 0.0),
    "two_distinct": ([[0, 0], [1, 1], [0, 0], [1, 1], [1, 1]], 0.0),
    "duplicated_vertices": ([[0, 0], [1, 0], [1, 1], [0, 0], [1, 0]], 0.5),
    "point_on_edge": ([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0]], 1.0),
    "points_on_every_edge": ([[-1, -1], [0, -1], [1, -1], [1, 0], [1, 1], [0, 1], [-1, 1],
                              [-1, 0], [0, 0]], 4.0),
    "interior_point": ([[0, 0], [1, 0], [0, 1], [0.25, 0.25]], 0.5),
    "triangle_ccw": ([[0, 0], [1, 0], [0, 1]], 0.5),
    "triangle_cw": ([[0, 0], [0, 1], [1, 0]], 0.5),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_and_special_sets(areas, name):
    points, want = DEGENERATE[name]
    points = np.asarray(points, np.float32)
    assert areas(points[None])[0] == want
    if want > 0:
        assert scipy_area(points) == pytest.approx(want)
    # Any order of the same points gives the same area.
    assert areas(points[None, ::-1])[0] == want


def test_batch_aware(areas):
    sets = [np.asarray(DEGENERATE[n][0][:3], np.float32)
            for n in ("triangle_ccw", "collinear", "identical", "triangle_cw")]
    np.testing.assert_array_equal(areas(np.stack(sets)), [0.5, 0.0, 0.0, 0.5])


TRIANGLE = np.asarray([[[0, 0], [1, 0], [0, 1]]], np.float32)
LINE = np.asarray([[[0, 0], [0.5, 0.5], [1, 1]]], np.float32)
SCALES = {"tf": lambda s, i: float(tf_hull.movement_scale(tf.constant(s), tf.constant(i))[0]),
          "torch": lambda s, i: float(torch_hull.movement_scale(torch.from_numpy(s),
                                                                 torch.from_numpy(i)).reshape(-1)[0]),
          "host": host_hull.movement_scale}


@pytest.mark.parametrize("implementation", sorted(SCALES))
def test_movement_scale_is_one_for_a_degenerate_hull(implementation):
    scale = SCALES[implementation]
    assert scale(TRIANGLE, 2 * TRIANGLE) == 0.5
    for source, initial in ((LINE, TRIANGLE), (TRIANGLE, LINE), (LINE, LINE)):
        assert scale(source, initial) == 1.0
