"""The skeleton: vertebrae with the spinal canal and cord, ribs and costal cartilages, sternum,
shoulder girdles and humeri, the head's bones (with the buccal mucosa), and the femurs.

Each builder returns {leaf class: shape}.
"""

from __future__ import annotations

import math

import numpy as np

from flows.phantom.grid import Point, Pred
from flows.phantom.layout import Layout, interp
from flows.phantom.shapes import Ellipsoid, Region, Shape, Tube, Union
from flows.phantom.spine import SECTIONS, Y_SPINE, Section, Spine, vertebra_name


def spine_parts(lay: Layout) -> dict[str, Shape]:
    sp = lay.spine
    parts: dict[str, Shape] = {}
    for name, region, z_lo, z_hi in sp.levels:
        sec = SECTIONS[region]
        lo_z, hi_z = z_lo + sec.disc / 2, z_hi - sec.disc / 2
        back = sec.body_ry + 2 * sec.canal_ry + sec.ring + sec.spinous + 1.5
        lo, hi = sp.sweep_bounds(lo_z, hi_z, max(sec.transverse, sec.body_rx), -back, sec.body_ry)
        zm = (lo_z + hi_z) / 2
        anchor = (*(float(v) for v in sp.center(zm)), zm)
        parts[name] = Region(_vertebra(sp, sec, lo_z, hi_z), lo, hi, anchor)
    reach = max(s.canal_rx for s in SECTIONS.values())
    lo, hi = sp.sweep_bounds(sp.z_end, sp.z_head, reach, -40.0, 0.0)
    mid = sp.thoracic_mid(6)
    xc, yc = (float(v) for v in sp.center(mid))
    canal_y = yc - (SECTIONS["thoracic"].body_ry + SECTIONS["thoracic"].canal_ry + 1.5)
    parts["spinal canal"] = Region(_canal(sp, 1.0, sp.z_end), lo, hi, (xc, canal_y, mid))
    cord_end = sp.level(vertebra_name("lumbar", 1))[0]
    lo, hi = sp.sweep_bounds(cord_end, sp.z_head, reach, -40.0, 0.0)
    parts["spinal cord"] = Region(_canal(sp, 0.55, cord_end), lo, hi, (xc, canal_y, mid))
    return parts


def _vertebra(sp: Spine, sec: Section, z_lo: float, z_hi: float) -> Pred:
    """Body, posterior arch, spinous and transverse processes, sheared along the centreline."""
    vc = -(sec.body_ry + sec.canal_ry + 1.5)  # canal centre, behind the body

    def fn(x, y, z):
        xc, yc = sp.center(z)
        u, v = x - xc, y - yc
        body = (u / sec.body_rx) ** 2 + (v / sec.body_ry) ** 2 <= 1.0
        canal = (u / sec.canal_rx) ** 2 + ((v - vc) / sec.canal_ry) ** 2
        ring = (u / (sec.canal_rx + sec.ring)) ** 2 + ((v - vc) / (sec.canal_ry + sec.ring)) ** 2
        back = vc - sec.canal_ry
        spinous = (np.abs(u) <= 3.5) & (v <= back) & (v >= back - sec.ring - sec.spinous)
        transverse = (np.abs(v - vc) <= sec.transverse_ry) & (np.abs(u) <= sec.transverse)
        solid = body | (ring <= 1.0) | spinous | transverse
        return solid & (canal > 1.0) & (z >= z_lo) & (z <= z_hi)

    return fn


def _canal(sp: Spine, scale: float, z_lo: float) -> Pred:
    """The spinal canal (scale 1) or the cord inside it (scale < 1), from z_lo to C1."""

    def fn(x, y, z):
        xc, yc = sp.center(z)
        s = sp.section(z)
        vc = -(s.body_ry + s.canal_ry + 1.5)
        u, v = (x - xc) / (scale * s.canal_rx), (y - yc - vc) / (scale * s.canal_ry)
        return (u * u + v * v <= 1.0) & (z >= z_lo) & (z <= sp.z_head)

    return fn


_RIB_END_DEG = (62.0, 56.0, 54.0, 52.0, 50.0, 48.0, 46.0, 40.0, 32.0, 22.0, -5.0, -35.0)
_RIB_DROP = (22.0, 45.0, 55.0, 62.0, 68.0, 72.0, 75.0, 75.0, 70.0, 58.0, 32.0, 18.0)
_RIB_RADIUS = (6.0, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.0, 4.5, 4.5)
_STERNAL_Z = (200.0, 162.0, 140.0, 118.0, 97.0, 76.0, 56.0)  # where cartilages 1-7 meet it
_MARGIN = ((30.0, 45.0), (50.0, 30.0), (70.0, 15.0))  # (x, z) where cartilages 8-10 end


def _rib_path(lay: Layout, n: int, side: float) -> np.ndarray:
    """Centreline of rib n: from the transverse process around the cavity toward the front."""
    sp, r = lay.spine, _RIB_RADIUS[n - 1]
    z0 = sp.thoracic_mid(n) + 4.0
    xc, yc = (float(v) for v in sp.center(z0))
    sec = SECTIONS["thoracic"]
    start = (xc + side * (sec.transverse - 6.0), yc - (sec.body_ry + sec.canal_ry + 1.5), z0)
    t0, t1 = math.radians(-80.0), math.radians(_RIB_END_DEG[n - 1])
    theta = np.linspace(t0, t1, 18)
    z = z0 - _RIB_DROP[n - 1] * (theta - t0) / (t1 - t0)
    x, y = lay.cage(theta, z, r + 3.5)
    return np.vstack([start, np.column_stack([side * x, y, z])])


def _cartilage_path(lay: Layout, n: int, side: float, rib_end: np.ndarray) -> np.ndarray:
    """Costal cartilage of rib n (1-10): along the front of the cage to the sternum (1-7) or
    to the costal margin (8-10)."""
    if n <= 7:
        z_end = _STERNAL_Z[n - 1]
        x_end = side * (_sternum_width(z_end) / 2 + 1.0)
    else:
        x_end, z_end = _MARGIN[n - 8]
        x_end = side * x_end * lay.k
    t = np.linspace(0.0, 1.0, 7)
    x = rib_end[0] + (x_end - rib_end[0]) * t
    z = rib_end[2] + (z_end - rib_end[2]) * t
    y = lay.cage_front(x, z, 9.0)
    return np.column_stack([x, y, z])


def rib_parts(lay: Layout) -> dict[str, Shape]:
    parts: dict[str, Shape] = {}
    cartilages = []
    for side, word in ((-1.0, "left"), (1.0, "right")):
        for n in range(1, 13):
            path = _rib_path(lay, n, side)
            parts[f"{word} rib {n}"] = Tube(path, _RIB_RADIUS[n - 1])
            if n <= 10:
                cartilages.append(Tube(_cartilage_path(lay, n, side, path[-1]), 4.5))
    parts["costal cartilage"] = Union(*cartilages)
    parts["rib cartilage"] = Union(*cartilages)  # SAT's second name for the same anatomy
    return parts


def _sternum_width(z):
    return interp(
        z,
        (
            (25.0, 14.0),
            (50.0, 20.0),
            (60.0, 28.0),
            (160.0, 34.0),
            (165.0, 30.0),
            (200.0, 50.0),
            (212.0, 46.0),
        ),
    )


def sternum_parts(lay: Layout) -> dict[str, Shape]:
    def plate(z_lo: float) -> Pred:
        def fn(x, y, z):
            flat = np.abs(y - lay.y_ant(z) - 8.0) <= 6.0
            return (np.abs(x) <= _sternum_width(z) / 2) & flat & (z >= z_lo) & (z <= 212.0)

        return fn

    lo, hi = (-26.0, float(lay.y_ant(212.0)), 25.0), (26.0, float(lay.y_ant(60.0)) + 16.0, 212.0)
    return {
        "sternum": Region(plate(25.0), lo, hi, (0.0, float(lay.y_ant(110.0)) + 8.0, 110.0)),
        "manubrium of sternum": Region(
            plate(162.0), lo, hi, (0.0, float(lay.y_ant(190.0)) + 8.0, 190.0)
        ),
    }


def shoulder_parts(lay: Layout) -> dict[str, Shape]:
    a, ysh = lay.A, lay.shoulder_y()
    parts: dict[str, Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        clavicle = [
            (side * 18.0, float(lay.y_ant(212.0)) + 10.0, 212.0),
            (side * 0.4 * a, float(lay.y_ant(225.0)) + 14.0, 225.0),
            (side * 0.75 * a, float(lay.y_ant(232.0)) + 4.0, 232.0),
            (side * (a + 8.0), ysh + 10.0, 238.0),
            (side * (a + 30.0), ysh + 6.0, 240.0),
        ]
        parts[f"{word} clavicle"] = Tube(clavicle, 6.5)
        parts[f"{word} scapula"] = _scapula(lay, side)
        head = Ellipsoid((side * (a + 50.0), ysh, 226.0), (23.0, 23.0, 23.0))
        shaft = Tube(arm_axis(lay, side)[1:], [13.0, 11.0])
        parts[f"{word} humerus"] = Union(head, shaft)
    return parts


def arm_axis(lay: Layout, side: float) -> list[Point]:
    """Axis of a raised upper arm: from below the shoulder joint up past the top of the FOV."""
    a, ysh = lay.A, lay.shoulder_y()
    return [
        (side * (a + 54.0), ysh - 4.0, 196.0),
        (side * (a + 52.0), ysh, 244.0),
        (side * (a + 40.0), ysh + 6.0, 440.0),
    ]


def _scapula(lay: Layout, side: float) -> Shape:
    """A thin blade lying on the posterolateral cage, a neck, and the glenoid at the shoulder."""
    offset = 5.5 + 3.5 + 5.5 + 12.0  # past the ribs (gap + radius + diameter) and muscle
    theta = math.radians(-48.0)
    x, y = (float(v) for v in lay.cage(theta, 165.0, offset))
    x2, y2 = (float(v) for v in lay.cage(theta + 0.01, 165.0, offset))
    t = np.array([side * (x2 - x), y2 - y, 0.0])
    t /= np.linalg.norm(t)
    normal = np.array([-t[1], t[0], 0.0])
    blade = Ellipsoid(
        (side * x, y, 165.0), (48.0, 6.0, 66.0), np.column_stack([t, normal, [0, 0, 1]])
    )
    glenoid_c = (side * (lay.A + 12.0), lay.shoulder_y() - 2.0, 226.0)
    glenoid = Ellipsoid(glenoid_c, (12.0, 16.0, 18.0))
    corner = (side * x + 40.0 * t[0], y + 40.0 * t[1], 205.0)
    return Union(blade, glenoid, Tube([corner, glenoid_c], 8.0))


def head_parts(lay: Layout) -> dict[str, Shape]:
    yc = lambda z: float(lay.spine.center(z)[1])  # noqa: E731
    jaw = [
        (-48.0, 40.0, 362.0),
        (-50.0, 40.0, 330.0),
        (-45.0, 52.0, 305.0),
        (-30.0, 80.0, 296.0),
        (0.0, 95.0, 292.0),
    ]
    jaw = jaw + [(-x, y, z) for x, y, z in reversed(jaw[:-1])]
    parts: dict[str, Shape] = {"mandible": Tube([(x, yc(z) + y, z) for x, y, z in jaw], 6.0)}
    cheeks = []
    for side, word in ((-1.0, "left"), (1.0, "right")):
        pts = [(side * 30.0, 55.0, 318.0), (side * 33.0, 72.0, 318.0), (side * 27.0, 88.0, 314.0)]
        cheeks.append(Tube([(x, yc(z) + y, z) for x, y, z in pts], 3.0))
        bone = [(side * 20.0, yc(383.0) + 30.0, 383.0), (side * 44.0, yc(376.0) + 14.0, 376.0)]
        parts[f"{word} eustachian tube bone"] = Tube(bone, 5.0)
    parts["buccal mucosa"] = Union(*cheeks)
    return parts


def pelvic_bone_parts(lay: Layout) -> dict[str, Shape]:
    parts: dict[str, Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        head_c = (side * 90.0, Y_SPINE + 40.0, -322.0)
        head = Ellipsoid(head_c, (23.0, 23.0, 23.0))
        neck = Tube([head_c, (side * 120.0, Y_SPINE + 30.0, -345.0)], 14.0)
        shaft = Tube(
            [(side * 122.0, Y_SPINE + 30.0, -345.0), (side * 118.0, Y_SPINE + 38.0, -430.0)], 15.0
        )
        parts[f"head of {word} femur"] = head
        parts[f"{word} femur"] = Union(head, neck, shaft)
    return parts
