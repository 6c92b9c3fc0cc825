"""The body's profiles and landmarks (world mm) shared by the anatomy builders.

The seeded jitter, the thoracic cavity and diaphragm, the mediastinal midline, the body
surface and the abdominal cavity, and the heart's envelope with its partition into chambers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from flows.phantom.geometry import PhantomGeometry
from flows.phantom.grid import Point, Pred
from flows.phantom.shapes import se3
from flows.phantom.spine import Spine, vertebra_name


class Jitter:
    """Small seeded variations, drawn in a fixed order so a seed always gives the same body."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def scale(self, rel: float) -> float:
        """A factor drawn within 1 +- ``rel``."""
        return 1.0 + rel * float(self.rng.uniform(-1.0, 1.0))

    def point(self, p: ArrayLike, mm: float = 3.0) -> np.ndarray:
        """``p`` moved by up to ``mm`` along each axis."""
        return np.asarray(p, float) + self.rng.uniform(-mm, mm, 3)


_Y_ANT = (
    (-60.0, 60.0),
    (0.0, 66.0),
    (60.0, 68.0),
    (120.0, 62.0),
    (180.0, 52.0),
    (230.0, 40.0),
    (270.0, 30.0),
)
FRONT = (
    (-400.0, 72.0),
    (-330.0, 86.0),
    (-250.0, 100.0),
    (-150.0, 106.0),
    (-60.0, 98.0),
    (0.0, 92.0),
    (60.0, 94.0),
    (120.0, 88.0),
    (180.0, 78.0),
    (230.0, 66.0),
    (250.0, 58.0),
    (264.0, 40.0),
    (275.0, 20.0),
    (286.0, 48.0),
    (300.0, 70.0),
    (400.0, 72.0),
)
_BACK = (
    (-400.0, -80.0),
    (250.0, -80.0),
    (264.0, -58.0),
    (292.0, -58.0),
    (305.0, -72.0),
    (400.0, -72.0),
)


def interp(z: ArrayLike, table: tuple[tuple[float, float], ...]) -> np.ndarray:
    """A profile at height ``z``: linear between the (z, value) pairs of ``table``."""
    zs, vs = zip(*table, strict=True)
    return np.interp(z, zs, vs)


class Layout:
    """Derived landmarks and profile functions (world mm) shared by the anatomy builders."""

    def __init__(self, geometry: PhantomGeometry, jit: Jitter, skin_mm: float) -> None:
        self.geometry = geometry
        self.spine = Spine(geometry.kyphosis_deg, geometry.scoliosis_deg)
        self.A = geometry.thoracic_width_mm / 2
        self.k = self.A / 140.0  # lateral scale of the abdomen with the chest
        self.skin = skin_mm
        self.fat = max(10.0, skin_mm + 4.0)
        sp = self.spine
        self.z_apex = sp.z_top + 15.0
        self.z_wide = sp.level(vertebra_name("thoracic", 7))[0]
        self.z_cpa = sp.z_bot - 8.0  # costophrenic recesses: the cavity's lowest point
        self.z_dome_r = sp.thoracic_mid(10) + 5.0
        self.z_dome_l = self.z_dome_r - 15.0
        self.y_ref, self.b_ref = (float(v) for v in self.frame(self.z_dome_r))
        self.z_carina = sp.level(vertebra_name("thoracic", 4))[0]
        self.heart = Heart(self, jit)

    # -- thoracic cavity ------------------------------------------------------------------
    def a_cav(self, z):
        """Half-width of the thoracic cavity: constant up to z_wide, elliptic taper to the apex."""
        t = np.clip((np.asarray(z, float) - self.z_wide) / (self.z_apex - self.z_wide), 0.0, 1.0)
        return self.A * np.sqrt(1.0 - t * t)

    def da_cav(self, z):
        """d a_cav / dz (capped near the apex, where it diverges)."""
        t = np.clip((np.asarray(z, float) - self.z_wide) / (self.z_apex - self.z_wide), 0.0, 0.98)
        return -self.A * t / (np.sqrt(1.0 - t * t) * (self.z_apex - self.z_wide))

    def y_ant(self, z):
        """y of the inner anterior chest wall (behind the sternum)."""
        return interp(z, _Y_ANT)

    def y_post(self, z):
        """y of the cavity's posterior wall: it follows the spine, 30 mm behind the bodies."""
        return self.spine.center(z)[1] - 30.0

    def frame(self, z):
        """(y centre, half-depth) of the cavity cross-section at height z."""
        ya, yp = self.y_ant(z), self.y_post(z)
        return (ya + yp) / 2, (ya - yp) / 2

    def z_dia(self, x, y):
        """Height of the diaphragm: two domes (right higher) over the costophrenic level."""

        def dome(xp, top):
            q = ((x - xp) / (0.62 * self.A)) ** 2 + (
                (y - self.y_ref - 0.15 * self.b_ref) / (0.95 * self.b_ref)
            ) ** 2
            return self.z_cpa + (top - self.z_cpa) * np.clip(1.0 - q, 0.0, None)

        return np.maximum(dome(0.45 * self.A, self.z_dome_r), dome(-0.45 * self.A, self.z_dome_l))

    def notch(self, x, y, z):
        """The spine and its gutters, which the cavity wraps around."""
        xc, yc = self.spine.center(z)
        return (np.abs(x - xc) < 40.0) & (y < yc + self.spine.section(z).body_ry + 3.0)

    def cavity(self, x, y, z):
        y0, b = self.frame(z)
        a = np.maximum(self.a_cav(z), 1e-6)
        inside = se3(x / a, (y - y0) / b) & (z <= self.z_apex) & (z >= self.z_dia(x, y))
        return inside & ~self.notch(x, y, z)

    def cavity_bounds(self):
        zs = np.linspace(self.z_cpa, self.z_apex, 64)
        lo = (-self.A, float(self.y_post(zs).min()), self.z_cpa)
        hi = (self.A, float(self.y_ant(zs).max()), self.z_apex)
        return lo, hi

    def cage(self, theta, z, offset):
        """A point on the cavity outline at angle theta (0 lateral, +pi/2 anterior), pushed
        outward by ``offset`` mm (more where the wall slopes, to stay outside in 3D)."""
        y0, b = self.frame(z)
        grow = offset * np.sqrt(1.0 + self.da_cav(z) ** 2)
        c, s = np.cos(theta), np.sin(theta)
        cs = np.sign(c) * np.abs(c) ** (2 / 3)
        sn = np.sign(s) * np.abs(s) ** (2 / 3)
        return (self.a_cav(z) + grow) * cs, y0 + (b + grow) * sn

    def cage_front(self, x, z, offset):
        """y of the cavity outline's anterior side at lateral position x, pushed out by offset."""
        y0, b = self.frame(z)
        a = self.a_cav(z) + offset
        u = np.clip(np.abs(x) / a, 0.0, 1.0)
        return y0 + (b + offset) * np.cbrt(1.0 - u**3)

    # -- midline structures -----------------------------------------------------------------
    def xt(self, z):
        """x of the trachea / mediastinal midline: halfway toward the spine's lateral shift."""
        return 0.5 * self.spine.center(z)[0]

    def yt(self, z):
        """y of the trachea's axis, a fixed distance in front of the vertebral bodies."""
        return self.spine.center(z)[1] + 46.0

    def by_trachea(self, dx: float, dy: float, z: float) -> Point:
        """A point offset from the tracheal axis at height z (neck and mediastinum)."""
        return (float(self.xt(z)) + dx, float(self.yt(z)) + dy, z)

    def by_spine(self, dx: float, dy: float, z: float) -> Point:
        """A point offset from the vertebral-body centre at height z (retroperitoneum)."""
        xc, yc = self.spine.center(z)
        return (float(xc) + dx, float(yc) + dy, z)

    def band(self, x, y, z):
        """The central mediastinal band between the lungs."""
        w = interp(z, ((-60.0, 16.0), (20.0, 16.0), (100.0, 20.0), (160.0, 26.0), (270.0, 20.0)))
        return np.abs(x - self.xt(z)) < w

    # -- body surface -----------------------------------------------------------------------
    def torso_w(self, z):
        a = self.A
        table = (
            (-400.0, 158.0),
            (-330.0, 168.0),
            (-250.0, 160.0),
            (-170.0, 0.88 * a + 26),
            (-60.0, a + 32),
            (150.0, a + 32),
            (215.0, a + 36),
            (248.0, a + 28),
            (262.0, 0.45 * a + 22),
            (272.0, 62.0),
            (292.0, 62.0),
            (305.0, 76.0),
            (400.0, 80.0),
        )
        return interp(z, table)

    def torso(self, x, y, z, off: float = 0.0):
        """Inside the torso, grown by ``off`` mm (negative: an inner offset surface)."""
        xc, yc = self.spine.center(z)
        front, back = interp(z, FRONT), yc + interp(z, _BACK)
        x0 = xc * np.clip((z - 250.0) / 15.0, 0.0, 1.0)  # the neck follows the cervical spine
        half_d = (front - back) / 2 + off
        return se3((x - x0) / (self.torso_w(z) + off), (y - (front + back) / 2) / half_d)

    def torso_bounds(self):
        zs = np.linspace(-420.0, 420.0, 169)
        _, yc = self.spine.center(zs)
        w = float(self.torso_w(zs).max()) + 20
        lo = (-w, float((yc + interp(zs, _BACK)).min()), -1e4)  # the body runs past the FOV
        hi = (w, float(interp(zs, FRONT).max()), 1e4)
        return lo, hi

    def shoulder_y(self) -> float:
        return float(self.frame(226.0)[0])

    def abdomen(self, x, y, z):
        """The abdominopelvic cavity: inside the muscular wall, below the diaphragm, in front of
        the spine and paraspinal muscles, above the pelvic floor."""
        xc, yc = self.spine.center(z)
        block = (np.abs(x - xc) < 50.0) & (y < yc + 18.0)
        below = (z <= self.z_dia(x, y) - 4.0) & (z >= -345.0)
        return self.torso(x, y, z, -(self.fat + 15.0)) & below & ~block


_CHAMBERS = {  # (is an atrium, is on the right) of each chamber
    "right heart atrium": (True, True),
    "left heart atrium": (True, False),
    "right heart ventricle": (False, True),
    "left heart ventricle": (False, False),
}


class Heart:
    """The heart envelope (an axis-aligned ellipsoid) and its partition into chambers."""

    def __init__(self, lay: Layout, jit: Jitter) -> None:
        g = lay.geometry
        w = g.heart_width_mm / 2
        z_floor = float(lay.z_dia(np.float64(-0.1 * w), np.float64(lay.y_ref)))
        az = min(0.44 * g.heart_width_mm, 78.0) * jit.scale(0.03)
        cz = z_floor + 0.8 * az
        front = float(lay.y_ant(cz)) - 4.0
        back = float(lay.spine.center(cz)[1]) + 36.0  # just in front of the esophagus
        ay = min(0.36 * g.heart_width_mm, (front - back) / 2) * jit.scale(0.03)
        cy = front - ay
        # both lateral extremes (at y = cy, z = cz) stay >= 3 mm inside the cavity
        y0, b = (float(v) for v in lay.frame(cz))
        room = float(lay.a_cav(cz)) * (1.0 - abs((cy - y0) / b) ** 3) ** (1 / 3) - 3.0 - w
        if room < 0:
            raise ValueError("The heart does not fit in the thoracic cavity; lower the CTR.")
        cx = -min(0.3 * w * jit.scale(0.1), room)
        self.c = np.array([cx, cy, cz])
        self.r = np.array([w, ay, az])
        self.wall = 0.14 * w
        # ventricles lie anterior-inferior-left of the atrioventricular plane, the right
        # chambers anterior-right of the septal plane (both planes through the centre)
        self.n_av = np.array([-0.35, 0.75, -0.55]) / np.linalg.norm([-0.35, 0.75, -0.55])
        self.n_sep = np.array([0.6, 0.75, 0.25]) / np.linalg.norm([0.6, 0.75, 0.25])
        self.lay = lay

    @property
    def top(self) -> float:
        return float(self.c[2] + self.r[2])

    def at(self, u: float, v: float, w: float) -> Point:
        """A point given in units of the semi-axes from the centre."""
        p = self.c + self.r * np.array([u, v, w])
        return (float(p[0]), float(p[1]), float(p[2]))

    def env(self, x, y, z, off: float = 0.0):
        r = self.r + off
        dx, dy, dz = (x - self.c[0]) / r[0], (y - self.c[1]) / r[1], (z - self.c[2]) / r[2]
        return dx * dx + dy * dy + dz * dz <= 1.0

    def _side(self, normal, x, y, z):
        return (
            (x - self.c[0]) * normal[0] + (y - self.c[1]) * normal[1] + (z - self.c[2]) * normal[2]
        )

    def part(self, name: str) -> Pred:
        """Predicate of one heart leaf; the five leaves partition the envelope (in the cavity)."""

        def fn(x, y, z):
            solid = self.env(x, y, z) & self.lay.cavity(x, y, z)
            av, sep = self._side(self.n_av, x, y, z), self._side(self.n_sep, x, y, z)
            septum = (np.abs(sep) < self.wall / 2) & (av >= 0)  # interventricular only
            lumen = self.env(x, y, z, -self.wall) & ~septum
            if name == "myocardium":
                return solid & ~lumen
            atrium, right = _CHAMBERS[name]
            return solid & lumen & ((av < 0) == atrium) & ((sep > 0) == right)

        return fn
