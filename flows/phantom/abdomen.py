"""The abdomen and pelvis: abdominal vessels, the liver's segments, the viscera and the bowel.

Each builder returns {leaf class: shape}.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from flows.phantom.grid import Pred
from flows.phantom.layout import Jitter, Layout
from flows.phantom.shapes import Ellipsoid, Region, Shape, Tube, Union, Where, region_like
from flows.phantom.spine import Y_SPINE


def abdominal_vessel_parts(lay: Layout) -> dict[str, Shape]:
    k, y, sv = lay.k, Y_SPINE, lay.by_spine
    parts: dict[str, Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        s = side * k
        parts[f"{word} iliac artery"] = Tube(
            [
                sv(-6, 29, -168.0),
                (s * 40.0, y + 38.0, -215.0),
                (s * 72.0, y + 52.0, -268.0),
                (s * 86.0, y + 76.0, -322.0),
            ],
            [7.0, 7.0, 6.5, 6.0],
        )
        parts[f"{word} iliac vena"] = Tube(
            [
                sv(22, 27, -185.0),
                (s * 38.0 - 4.0, y + 26.0, -225.0),
                (s * 68.0, y + 40.0, -275.0),
                (s * 72.0, y + 78.0, -325.0),
            ],
            8.0,
        )
    parts["celiac trunk"] = Tube([sv(-8, 36, -42.0), sv(-5, 58, -48.0)], 4.5)
    parts["renal artery"] = Union(
        Tube([sv(-8, 29, -92.0), sv(-48 * k, 10, -96.0)], 3.5),
        Tube([sv(-8, 29, -92.0), sv(10, 16, -98.0), sv(48 * k, 8, -108.0)], 3.5),
    )
    parts["renal vein"] = Union(
        Tube([sv(-48 * k, 14, -92.0), sv(-8, 46, -92.0), sv(14, 32, -94.0)], 5.0),
        Tube([sv(48 * k, 12, -104.0), sv(26, 24, -98.0)], 5.0),
    )
    parts["portal vein and splenic vein"] = Tube(
        [
            (-92.0 * k, y + 22.0, -62.0),
            sv(-60 * k, 40, -66.0),
            sv(-30 * k, 44, -72.0),
            sv(5, 48, -84.0),
            sv(25 * k, 56, -68.0),
            (48.0 * k, y + 58.0, -48.0),
        ],
        6.0,
    )
    return parts


def _liver_region(lay: Layout, jit: Jitter) -> tuple[Ellipsoid, Pred]:
    k = lay.k
    shape = Ellipsoid(
        jit.point((44.0 * k, Y_SPINE + 55.0, -42.0)), (126.0 * k * jit.scale(0.03), 75.0, 72.0)
    )
    sp = lay.spine

    def fn(x, y, z):
        xc, yc = sp.center(z)
        block = (np.abs(x - xc) < 40.0) & (y < yc + 28.0)
        # the left lobe thins toward its tip, above the stomach
        floor = -125.0 + np.clip(20.0 * k - x, 0.0, None) * (85.0 / (100.0 * k))
        solid = shape.inside(x, y, z) & (z >= floor) & (z <= lay.z_dia(x, y) - 4.0)
        return solid & lay.abdomen(x, y, z) & ~block

    return shape, fn


def liver_parts(lay: Layout, jit: Jitter) -> dict[str, Shape]:
    """The liver's Couinaud segments: planes through the gallbladder fossa (Cantlie line),
    the falciform ligament, the right hepatic vein and the portal bifurcation."""
    k, y = lay.k, Y_SPINE
    box, liver = _liver_region(lay, jit)
    xc, yc = (float(v) for v in lay.spine.center(-45.0))
    caudate = Ellipsoid((xc + 2.0, yc + 45.0, -45.0), (16.0, 12.0, 25.0))
    x_cantlie, x_falx, y_rhv, z_portal = 18.0 * k, -12.0 * k, y + 48.0, -40.0

    def segment(test: Callable[..., np.ndarray]) -> Pred:
        return lambda x, y, z: liver(x, y, z) & ~caudate.inside(x, y, z) & test(x, y, z)

    left_sup = lambda x, y, z: (z + 35.0) + 0.6 * (y - Y_SPINE - 60.0) > 0  # noqa: E731
    tests = {
        "left lateral superior segment of liver": (
            lambda x, y, z: (x < x_falx) & left_sup(x, y, z),
            (-45.0 * k, y + 55.0, -10.0),
        ),
        "left lateral inferior segment of liver": (
            lambda x, y, z: (x < x_falx) & ~left_sup(x, y, z),
            (-35.0 * k, y + 85.0, -40.0),
        ),
        "left medial segment of liver": (
            lambda x, y, z: (x >= x_falx) & (x < x_cantlie),
            (0.0, y + 75.0, -45.0),
        ),
        "right anterior inferior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y > y_rhv) & (z < z_portal),
            (60.0 * k, y + 75.0, -75.0),
        ),
        "right posterior inferior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y <= y_rhv) & (z < z_portal),
            (95.0 * k, y + 25.0, -80.0),
        ),
        "right posterior superior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y <= y_rhv) & (z >= z_portal),
            (90.0 * k, y + 25.0, -15.0),
        ),
        "right anterior superior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y > y_rhv) & (z >= z_portal),
            (55.0 * k, y + 75.0, -10.0),
        ),
    }
    parts: dict[str, Shape] = {
        name: region_like(segment(test), box, anchor) for name, (test, anchor) in tests.items()
    }
    parts["caudate lobe"] = region_like(
        lambda x, y, z: liver(x, y, z) & caudate.inside(x, y, z), caudate
    )
    whole = region_like(liver, box)
    tumor = Ellipsoid(jit.point((85.0 * k, y + 30.0, -25.0)), 13.0 * jit.scale(0.1))
    parts["liver tumor"] = Where(tumor, whole)
    porta = (55.0 * k, y + 55.0, -42.0)
    hv = (xc + 22.0, yc + 36.0, -22.0)
    vessels = Union(
        Tube([porta, (85.0 * k, y + 40.0, -30.0), (100.0 * k, y + 55.0, -45.0)], [5.0, 4.5, 3.5]),
        Tube([porta, (20.0 * k, y + 70.0, -35.0), (-20.0 * k, y + 75.0, -25.0)], [5.0, 4.5, 3.5]),
        Tube([hv, (60.0 * k, y + 50.0, 5.0)], [5.0, 3.5]),
        Tube([hv, (5.0, y + 65.0, 0.0)], [5.0, 3.5]),
        anchor=(85.0 * k, y + 40.0, -30.0),
    )
    parts["liver vessel"] = Where(vessels, whole)
    return parts


def abdominal_parts(lay: Layout, jit: Jitter) -> dict[str, Shape]:
    k, y, a = lay.k, Y_SPINE, lay.A

    sv = lay.by_spine

    def ellipsoid(center, radii, rel=0.04) -> Ellipsoid:
        return Ellipsoid(jit.point(center), np.asarray(radii) * jit.scale(rel))

    below = Region(
        lambda x, y, z: (z <= lay.z_dia(x, y) - 4.0) & lay.abdomen(x, y, z),
        (-400.0, -400.0, -400.0),
        (400.0, 400.0, 400.0),
        (0.0, 0.0, 0.0),
    )
    parts: dict[str, Shape] = {}
    parts["spleen"] = Where(
        ellipsoid((-(a - 24.0), y - 15.0, -68.0), (20.0 * k, 45.0, 45.0)), below
    )
    fundus = ellipsoid((-62.0 * k, y + 45.0, -12.0), (30.0 * k, 32.0, 26.0))
    body = Tube(
        [
            (-70.0 * k, y + 62.0, -42.0),
            (-60.0 * k, y + 78.0, -75.0),
            (-25.0 * k, y + 88.0, -98.0),
            (8.0 * k, y + 82.0, -100.0),
            (22.0 * k, y + 72.0, -92.0),
        ],
        [26.0, 24.0, 20.0, 14.0, 11.0],
    )
    parts["stomach"] = Where(Union(fundus, body), below, anchor=body.p[1])
    parts["gallbladder"] = ellipsoid((30.0 * k, y + 95.0, -90.0), (14.0, 14.0, 30.0))
    for side, word, z, tilt in ((-1.0, "left", -98.0, 0.2), (1.0, "right", -112.0, -0.2)):
        c = np.array(sv(side * 70.0 * k, 8.0 if side < 0 else 5.0, z))
        rot = np.array(
            [[math.cos(tilt), 0, math.sin(tilt)], [0, 1, 0], [-math.sin(tilt), 0, math.cos(tilt)]]
        )
        kidney = Ellipsoid(jit.point(c, 2.0), (25.0 * k, 22.0, 52.0), rot)
        parts[f"{word} kidney"] = kidney
        cyst_at = c + (np.array([0.0, -6.0, 26.0]) if side < 0 else np.array([4.0, 0.0, -28.0]))
        parts[f"{word} kidney cyst"] = Where(Ellipsoid(cyst_at, 8.0 if side < 0 else 7.0), kidney)
        if side < 0:
            tumor = Ellipsoid(c + np.array([-6.0, 3.0, -30.0]), 10.0 * jit.scale(0.1))
            parts["kidney tumor"] = Where(tumor, kidney)
        adrenal = sv(side * 45.0 * k, 12.0 if side < 0 else 10.0, -38.0 if side < 0 else -45.0)
        parts[f"{word} adrenal gland"] = ellipsoid(adrenal, (6.0, 13.0, 17.0))
    pancreas = Tube(
        [
            sv(32 * k, 62, -110.0),
            sv(20 * k, 66, -92.0),
            sv(0, 68, -80.0),
            sv(-35 * k, 58, -70.0),
            sv(-68 * k, 40, -58.0),
        ],
        [15.0, 13.0, 11.0, 10.0, 9.0],
    )
    parts["pancreas"] = pancreas
    parts["pancreas tumor"] = Where(
        Ellipsoid(sv(30 * k, 62, -106.0), 9.0 * jit.scale(0.1)), pancreas
    )
    parts["duodenum"] = Tube(
        [
            (22.0 * k, y + 70.0, -92.0),
            (45.0 * k, y + 62.0, -100.0),
            sv(55 * k, 40, -125.0),
            sv(50 * k, 42, -150.0),
            sv(10, 58, -160.0),
            sv(-25 * k, 52, -140.0),
            sv(-32 * k, 55, -112.0),
        ],
        13.0,
    )
    parts.update(_bowel_parts(lay, jit))
    parts["prostate"] = Ellipsoid((0.0, y + 82.0, -372.0), (20.0, 15.0, 17.0))
    return parts


def _bowel_parts(lay: Layout, jit: Jitter) -> dict[str, Shape]:
    k, y = lay.k, Y_SPINE
    colon = [
        (78, 58, -210),
        (86, 55, -160),
        (84, 58, -125),
        (66, 80, -118),
        (35, 108, -128),
        (0, 116, -140),
        (-40, 106, -128),
        (-92, 50, -85),
        (-95, 45, -125),
        (-92, 45, -175),
        (-82, 55, -215),
        (-50, 85, -245),
        (-15, 75, -255),
        (0, 45, -262),
    ]
    radii = [25, 22, 22, 20, 18, 18, 18, 18, 17, 17, 16, 15, 15, 15]
    small = [
        (-60, 82, -152),
        (55, 88, -154),
        (58, 78, -174),
        (-58, 86, -177),
        (-60, 74, -197),
        (55, 84, -199),
        (50, 70, -218),
        (-50, 78, -221),
        (-30, 65, -238),
        (20, 60, -240),
    ]
    to_world = lambda pts: [(x * k, y + dy, z) for x, dy, z in pts]  # noqa: E731
    return {
        "colon": Tube(to_world(colon), radii),
        "small bowel": Tube([jit.point(p, 4.0) for p in to_world(small)], 12.0),
        "rectum": Tube(
            [
                (0.0, y + 45.0, -262.0),
                (0.0, y + 30.0, -300.0),
                (0.0, y + 38.0, -345.0),
                (0.0, y + 55.0, -385.0),
            ],
            17.0,
        ),
    }
