"""Every leaf class's shape: the body wall (skin, muscle, breasts, abdominal tissue) and the
builders of the skeleton, thorax and abdomen, called in a fixed order (the seeded jitter is
drawn in that order, so a seed always gives the same body)."""

from __future__ import annotations

import numpy as np

from flows.phantom.abdomen import abdominal_parts, abdominal_vessel_parts, liver_parts
from flows.phantom.layout import FRONT, Jitter, Layout, interp
from flows.phantom.shapes import Ellipsoid, Minus, Region, Shape, Tube, Union
from flows.phantom.skeleton import (
    arm_axis,
    head_parts,
    pelvic_bone_parts,
    rib_parts,
    shoulder_parts,
    spine_parts,
    sternum_parts,
)
from flows.phantom.spine import Y_SPINE
from flows.phantom.thorax import airway_parts, heart_parts, thorax_parts, vessel_parts


def _body_parts(lay: Layout) -> tuple[dict[str, Shape], Shape]:
    """Skin, muscle, breasts and abdominal tissue; also the whole body (painted as fat).

    Surfaces are unions of torso, arms and breasts, each rasterised over its own box: testing
    the arms everywhere in the torso's box would cost most of the phantom's time."""
    a = lay.A
    tlo, thi = lay.torso_bounds()

    def torso(grow: float) -> Region:
        return Region(lambda x, y, z: lay.torso(x, y, z, grow), tlo, thi, (0.0, 0.0, 0.0))

    def arms(grow: float) -> list[Tube]:
        # raised beside the head, as chest CT is acquired: the lateral view of the chest stays clear
        return [Tube(arm_axis(lay, s), 40.0 + grow) for s in (-1.0, 1.0)]

    def breasts(grow: float) -> list[Ellipsoid]:
        z = 50.0
        return [
            Ellipsoid(
                (s * 0.42 * a, float(interp(z, FRONT)) - 10.0, z),
                (48.0 + grow, 28.0 + grow, 45.0 + grow),
            )
            for s in (-1.0, 1.0)
        ]

    def body(grow: float) -> Union:
        return Union(torso(grow), *arms(grow), *breasts(grow))

    front = float(interp(100.0, FRONT))
    cavity = Region(lay.cavity, *lay.cavity_bounds(), (0.0, 0.0, 0.0))
    abd_lo, abd_hi = (tlo[0], tlo[1], -345.0), (thi[0], thi[1], lay.z_dome_r)
    abdomen = Region(lay.abdomen, abd_lo, abd_hi, (0.0, Y_SPINE + 95.0, -180.0))
    parts: dict[str, Shape] = {
        "skin": Minus(body(0.0), body(-lay.skin), (0.0, front - lay.skin / 2, 100.0)),
        "muscle": Minus(
            Union(torso(-lay.fat), *arms(-lay.fat)),
            Union(cavity, abdomen),
            (0.0, float(lay.spine.center(60.0)[1]) - 50.0, 60.0),
        ),
        "abdominal tissue": abdomen,
    }
    for shape, word in zip(breasts(0.0), ("left", "right"), strict=True):
        parts[f"{word} breast"] = Region(
            lambda x, y, z, s=shape: s.inside(x, y, z) & ~lay.torso(x, y, z, -lay.fat),
            shape.lo,
            shape.hi,
            shape.c + np.array([0.0, shape.r[1] * 0.6, 0.0]),
        )
    return parts, body(0.0)


def leaf_shapes(lay: Layout, jit: Jitter) -> tuple[dict[str, Shape], Shape]:
    """Every leaf class's shape, and the body outline."""
    shapes: dict[str, Shape] = {}
    shapes.update(heart_parts(lay))
    shapes.update(spine_parts(lay))
    shapes.update(rib_parts(lay))
    shapes.update(sternum_parts(lay))
    shapes.update(shoulder_parts(lay))
    shapes.update(head_parts(lay))
    shapes.update(pelvic_bone_parts(lay))
    shapes.update(thorax_parts(lay, jit))
    shapes.update(airway_parts(lay))
    shapes.update(vessel_parts(lay))
    shapes.update(abdominal_vessel_parts(lay))
    shapes.update(liver_parts(lay, jit))
    shapes.update(abdominal_parts(lay, jit))
    body_parts, body = _body_parts(lay)
    shapes.update(body_parts)
    return shapes, body
