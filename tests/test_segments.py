"""Nearest-segment distances: known answers, and bit-for-bit equality with shapely."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from incubloc.segments import SegmentIndex, segments_of


def _shapely_nearest(xy: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """What the code replaced: an STRtree of the segments as lines, one GEOS search a point."""
    tree = shapely.STRtree(shapely.linestrings(seg.reshape(-1, 2, 2)))
    idx, dist = tree.query_nearest(shapely.points(xy), return_distance=True, all_matches=False)
    out = np.full(len(xy), np.nan)
    out[idx[0]] = dist
    return out


def _adversarial(seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vertices, points on segments, midpoints, and far points."""
    a, b = seg[:, :2], seg[:, 2:]
    on = a + rng.random((len(seg), 1)) * (b - a)
    lo, hi = seg.reshape(-1, 2).min(axis=0), seg.reshape(-1, 2).max(axis=0)
    far = np.array([lo - 1e6, hi + 1e6, [lo[0] - 3e5, hi[1]], (lo + hi) / 2])
    return np.vstack([a, b, on, (a + b) / 2, far])


def test_square_known_distances():
    index = SegmentIndex(segments_of(box(0, 0, 10, 10).exterior))
    xy = np.array([
        [1.0, 5.0],    # 1 from the left side
        [5.0, 5.0],    # the centre: 5 from all four sides (a four-way tie)
        [2.0, 2.0],    # equally far (2) from two sides
        [13.0, 14.0],  # outside, nearest the corner (10, 10): a 3-4-5 triangle
        [10.0, 10.0],  # on a vertex
        [10.0, 3.5],   # on a side
        [-4.0, 5.0],   # outside, facing a side
        [np.nan, 1.0],
    ])
    got = index.distance(xy)
    np.testing.assert_array_equal(got[:-1], [1.0, 5.0, 2.0, 5.0, 0.0, 0.0, 4.0])
    assert np.isnan(got[-1])
    assert index.distance(np.empty((0, 2))).shape == (0,)


def test_one_segment_and_a_degenerate_one():
    seg = np.array([[0.0, 0.0, 3.0, 4.0], [10.0, 0.0, 10.0, 0.0]])
    got = SegmentIndex(seg).distance(np.array([[-3.0, -4.0], [4.0, -3.0], [13.0, 4.0]]))
    # beyond A: |PA| = 5; beside the segment: the perpendicular, 5; the point segment: 5
    np.testing.assert_allclose(got, [5.0, 5.0, 5.0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="at least one segment"):
        SegmentIndex(np.empty((0, 4)))


@pytest.mark.parametrize("offset", [0.0, 5e5])
def test_equals_shapely_bit_for_bit(offset):
    """Jagged rings with a hole, long and short segments, at UTM-sized coordinates."""
    rng = np.random.default_rng(7)
    for m in (3, 40, 700):
        ang = np.sort(rng.uniform(0, 2 * np.pi, m))
        rad = 2e4 * (1 + 0.5 * rng.random(m))
        shell = np.column_stack([offset + rad * np.cos(ang), 3e6 + rad * np.sin(ang)])
        hole = shapely.Point(offset, 3e6).buffer(3000, quad_segs=3).exterior.coords
        geom = Polygon(shell, [hole]) if m > 3 else Polygon(shell)
        seg = segments_of(shapely.get_rings(geom))
        xy = np.vstack([
            rng.uniform([offset - 4e4, 3e6 - 4e4], [offset + 4e4, 3e6 + 4e4], (20_000, 2)),
            _adversarial(seg, rng),
        ])
        np.testing.assert_array_equal(SegmentIndex(seg).distance(xy), _shapely_nearest(xy, seg))

