"""The spine: its vertebral levels, their cross-sections, and the centreline that kyphosis and
scoliosis bend (``PhantomGeometry`` says exactly how)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

Y_SPINE = -55.0  # y of the vertebral-body centre at the ends of the thoracic arc
Z_C1_TOP = 355.0
_HEIGHTS = {"cervical": 15.0, "thoracic": 23.5, "lumbar": 31.0, "sacral": 40.0}
_COUNTS = {"cervical": 7, "thoracic": 12, "lumbar": 6, "sacral": 1}


class Section(NamedTuple):
    """Half-sizes (mm) of a vertebra's cross-section in its region of the spine."""

    body_rx: float
    body_ry: float
    canal_rx: float
    canal_ry: float
    ring: float  # thickness of the posterior arch around the canal
    spinous: float  # posterior length of the spinous process
    transverse: float  # half-span of the transverse processes (alae for S1)
    transverse_ry: float  # half-thickness of the transverse processes
    disc: float  # gap between vertebrae


SECTIONS = {
    "cervical": Section(10.0, 8.0, 11.0, 7.0, 4.0, 16.0, 24.0, 4.0, 3.0),
    "thoracic": Section(15.0, 13.0, 9.0, 8.0, 5.0, 24.0, 34.0, 5.0, 4.0),
    "lumbar": Section(22.0, 16.0, 11.0, 8.0, 6.0, 26.0, 38.0, 6.0, 7.0),
    "sacral": Section(26.0, 18.0, 12.0, 6.0, 7.0, 14.0, 55.0, 14.0, 4.0),
}


def vertebra_name(region: str, n: int) -> str:
    letter = region[0]
    label = {"cervical": "cervical", "thoracic": "thoracic", "lumbar": "lumbar", "sacral": "sacral"}
    return f"{label[region]} vertebrae {n} ({letter}{n})"


class Spine:
    """Spinal centreline (x(z), y(z)) and the vertebral levels, in mm."""

    def __init__(self, kyphosis_deg: float, scoliosis_deg: float) -> None:
        self.levels: list[tuple[str, str, float, float]] = []  # name, region, z_lo, z_hi
        z = Z_C1_TOP
        for region in ("cervical", "thoracic", "lumbar", "sacral"):
            for n in range(1, _COUNTS[region] + 1):
                self.levels.append((vertebra_name(region, n), region, z - _HEIGHTS[region], z))
                z -= _HEIGHTS[region]
        self.z_head = Z_C1_TOP
        self.z_top = Z_C1_TOP - 7 * _HEIGHTS["cervical"]  # top of T1
        self.z_bot = self.z_top - 12 * _HEIGHTS["thoracic"]  # bottom of T12
        self.z_tail = self.z_bot - 6 * _HEIGHTS["lumbar"]  # bottom of L6
        self.z_end = self.z_tail - _HEIGHTS["sacral"]  # bottom of S1
        self.kyphosis = math.radians(kyphosis_deg)
        self.scoliosis = math.radians(abs(scoliosis_deg))
        self.side = 1.0 if scoliosis_deg >= 0 else -1.0

    def level(self, name: str) -> tuple[float, float]:
        """(z_lo, z_hi) of a vertebra."""
        for level, _, lo, hi in self.levels:
            if level == name:
                return lo, hi
        raise KeyError(name)

    def thoracic_mid(self, n: int) -> float:
        lo, hi = self.level(vertebra_name("thoracic", n))
        return (lo + hi) / 2

    def bend(self, z, angle: float):
        """Offset from the chord: a circular arc of central angle ``angle`` over T1..T12, with
        cubic tails over the cervical and lumbar spine that leave the arc's end tangent and
        return to zero offset with a vertical tangent (so the curve is C1-continuous)."""
        z = np.asarray(z, dtype=float)
        if angle == 0.0:
            return np.zeros_like(z)
        half = (self.z_top - self.z_bot) / 2
        radius = half / math.sin(angle / 2)
        dz = np.clip(z - (self.z_top + self.z_bot) / 2, -half, half)
        arc = np.sqrt(radius * radius - dz * dz) - radius * math.cos(angle / 2)
        slope = math.tan(angle / 2)  # |d offset / dz| at both ends of the arc
        up_len, down_len = self.z_head - self.z_top, self.z_bot - self.z_tail
        d_up = np.clip(z - self.z_top, 0.0, up_len)
        d_down = np.clip(self.z_bot - z, 0.0, down_len)
        neck = -slope * d_up * (1 - d_up / up_len) ** 2
        loin = -slope * d_down * (1 - d_down / down_len) ** 2
        return np.where(z > self.z_top, neck, np.where(z < self.z_bot, loin, arc))

    def center(self, z):
        """(x, y) of the vertebral-body centre at height z: kyphosis bulges posteriorly (-y),
        scoliosis toward the convex side."""
        x = self.side * self.bend(z, self.scoliosis)
        y = Y_SPINE - self.bend(z, self.kyphosis)
        return x, y

    def section(self, z) -> Section:
        """The cross-section in force at height z (each field an array shaped like z)."""
        z = np.asarray(z, dtype=float)
        conds = [z >= self.z_top, z >= self.z_bot, z >= self.z_tail]
        regions = ("cervical", "thoracic", "lumbar", "sacral")
        fields = zip(*(SECTIONS[r] for r in regions), strict=True)
        return Section(*(np.select(conds, list(vals[:3]), vals[3]) for vals in fields))

    def sweep_bounds(self, z_lo: float, z_hi: float, reach_x: float, y_lo: float, y_hi: float):
        """World bounds of a cross-section (x within +-reach_x, y within y_lo..y_hi of the
        centre) swept along the centreline between two heights."""
        zs = np.linspace(z_lo, z_hi, 65)
        xc, yc = self.center(zs)
        lo = (xc.min() - reach_x - 2, yc.min() + y_lo - 2, z_lo)
        hi = (xc.max() + reach_x + 2, yc.max() + y_hi + 2, z_hi)
        return lo, hi
