"""The chest and neck: heart, lungs and their lesions, thoracic cavity and mediastinum, airway,
esophagus, thyroid, and the great vessels of the chest and neck.

Each builder returns {leaf class: shape}.
"""

from __future__ import annotations

import numpy as np

from flows.phantom.grid import Pred
from flows.phantom.layout import Jitter, Layout
from flows.phantom.shapes import Ellipsoid, Region, Shape, Tube, Union, Where, region_like

_HEART_ANCHORS = {
    "myocardium": (-0.96, 0.0, 0.0),
    "right heart atrium": (0.5, -0.2, 0.2),
    "left heart atrium": (-0.2, -0.5, 0.35),
    "right heart ventricle": (0.25, 0.5, -0.3),
    "left heart ventricle": (-0.45, 0.05, -0.3),
}


def heart_parts(lay: Layout) -> dict[str, Shape]:
    h = lay.heart
    box = Ellipsoid(h.c, h.r)
    parts: dict[str, Shape] = {
        name: region_like(h.part(name), box, h.at(*uvw)) for name, uvw in _HEART_ANCHORS.items()
    }
    auricle = Ellipsoid(h.at(-0.5, -0.25, 0.55), 2 * h.r[0] * np.array([0.08, 0.06, 0.07]))
    parts["left auricle of heart"] = Where(auricle, parts["left heart atrium"])
    shell = Ellipsoid(h.c, h.r + 3.0)
    parts["heart tissue"] = region_like(
        lambda x, y, z: h.env(x, y, z, 3.0) & ~h.env(x, y, z) & lay.cavity(x, y, z),
        shell,
        h.at(0.0, 0.0, 1.0) + np.array([0.0, 0.0, 1.5]),
    )
    return parts


def _lung_parts(lay: Layout) -> dict[str, Shape]:
    """Five lobes filling the cavity outside the mediastinum, heart and effusion."""
    h, a = lay.heart, lay.A
    y_post_ref = lay.y_ref - lay.b_ref
    y_ant_ref = lay.y_ref + lay.b_ref

    z_horizontal = 105.0  # the right horizontal fissure (4th costal cartilage)

    def above_oblique(y, z, z_post):
        """In front of / above the oblique fissure: a plane falling from the back at z_post to
        the anterior diaphragm."""
        slope = (-20.0 - z_post) / (y_ant_ref - y_post_ref)
        return (z - z_post) - (y - y_post_ref) * slope >= 0

    def lobe(side: float, part: str) -> Pred:
        z_post = lay.spine.thoracic_mid(4) if side > 0 else lay.spine.thoracic_mid(3)
        effusion = _effusion(lay)

        def fn(x, y, z):
            lung = lay.cavity(x, y, z) & ~lay.band(x, y, z) & ~h.env(x, y, z, 3.0)
            lung &= ~effusion(x, y, z) & ((x - lay.xt(z)) * side > 0)
            front = above_oblique(y, z, z_post)
            if part == "lower":
                return lung & ~front
            if side < 0:
                return lung & front
            return lung & front & ((z >= z_horizontal) == (part == "upper"))

        return fn

    (lo, hi) = lay.cavity_bounds()
    half = {
        1.0: (np.array([-30.0, lo[1], lo[2]]), np.array(hi)),
        -1.0: (np.array(lo), np.array([30.0, hi[1], hi[2]])),
    }
    anchors = {
        "right lung upper lobe": (1.0, "upper", (0.5 * a, lay.y_ref, 190.0)),
        "right lung middle lobe": (1.0, "middle", (0.55 * a, y_ant_ref - 25.0, 60.0)),
        "right lung lower lobe": (1.0, "lower", (0.6 * a, lay.y_ref - 0.4 * lay.b_ref, 20.0)),
        "left lung upper lobe": (-1.0, "upper", (-0.55 * a, lay.y_ref + 0.3 * lay.b_ref, 110.0)),
        "left lung lower lobe": (-1.0, "lower", (-0.6 * a, lay.y_ref - 0.4 * lay.b_ref, 30.0)),
    }
    parts: dict[str, Shape] = {
        name: Region(lobe(side, part), *half[side], anchor)
        for name, (side, part, anchor) in anchors.items()
    }
    return parts


def _effusion(lay: Layout) -> Pred:
    """A dependent (posterior) basal crescent on the right: thickest at the recess, 60 mm tall."""

    def fn(x, y, z):
        depth = 18.0 * (1.0 - (z - lay.z_cpa) / 60.0)
        return (x > lay.xt(z) + 20.0) & (y - lay.y_post(z) < depth) & (z < lay.z_cpa + 60.0)

    return fn


def thorax_parts(lay: Layout, jit: Jitter) -> dict[str, Shape]:
    a, h = lay.A, lay.heart
    lo, hi = lay.cavity_bounds()
    cavity = Region(lay.cavity, lo, hi, (0.5 * a, lay.y_ref, 60.0))
    eff = _effusion(lay)
    y_eff = float(lay.y_post(lay.z_cpa + 10.0)) + 9.0
    parts: dict[str, Shape] = {
        "thoracic cavity": cavity,
        "lung effusion": Region(
            lambda x, y, z: lay.cavity(x, y, z) & eff(x, y, z),
            (-30.0, lo[1], lo[2]),
            (a, hi[1], lay.z_cpa + 60.0),
            (0.5 * a, y_eff, lay.z_cpa + 10.0),
        ),
        "mediastinal tissue": Region(
            lambda x, y, z: lay.cavity(x, y, z) & lay.band(x, y, z) & ~h.env(x, y, z, 3.0),
            (-60.0, lo[1], lo[2]),
            (60.0, hi[1], hi[2]),
            (float(lay.xt(200.0)), float(lay.yt(200.0)) + 22.0, 200.0),
        ),
    }
    parts.update(_lung_parts(lay))
    y0 = lay.y_ref
    nodule = Ellipsoid(jit.point((0.45 * a, y0 + 0.1 * lay.b_ref, 175.0)), 6.0 * jit.scale(0.1))
    tumor = Ellipsoid(jit.point((-0.62 * a, y0 - 0.35 * lay.b_ref, 45.0)), 14.0 * jit.scale(0.1))
    parts["lung nodule"] = Where(nodule, parts["right lung upper lobe"])
    parts["lung tumor"] = Where(tumor, parts["left lung lower lobe"])
    thymus = Ellipsoid(jit.point((0.0, float(lay.y_ant(185.0)) - 14.0, 185.0)), (24.0, 9.0, 28.0))
    parts["thymus"] = Where(thymus, cavity)
    return parts


def airway_parts(lay: Layout) -> dict[str, Shape]:
    tr = lay.by_trachea
    zc = lay.z_carina
    trachea = Tube(
        [tr(0, 0, 268.0), tr(0, 0, 250.0), tr(0, 0, 220.0), tr(0, 0, 190.0), tr(0, 0, zc)], 10.0
    )
    car, yt = tr(0, 0, zc), float(lay.yt(zc))
    right_hub = (38.0, yt - 4.0, zc - 20.0)
    inter = (48.0, yt - 8.0, zc - 45.0)
    left_hub = (-45.0, yt - 8.0, zc - 28.0)
    bronchi = Union(
        Tube([car, (22.0, yt - 2.0, zc - 12.0), right_hub], [7.0, 6.5, 6.0]),
        Tube([right_hub, (55.0, yt, zc - 8.0)], [5.0, 4.5]),
        Tube([right_hub, inter], [5.5, 5.0]),
        Tube([inter, (60.0, yt + 12.0, zc - 60.0)], [4.5, 4.0]),
        Tube([inter, (62.0, yt - 22.0, zc - 80.0)], [5.0, 4.5]),
        Tube([car, (-25.0, yt - 4.0, zc - 15.0), left_hub], [7.0, 6.0, 5.5]),
        Tube([left_hub, (-60.0, yt + 4.0, zc - 15.0)], [5.0, 4.5]),
        Tube([left_hub, (-62.0, yt - 20.0, zc - 70.0)], [5.0, 4.5]),
    )
    sp = lay.spine

    def larynx(z_lo: float, z_hi: float) -> Pred:
        def fn(x, y, z):
            u, v = (x - lay.xt(z)) / 19.0, (y - sp.center(z)[1] - 48.0) / 16.0
            return (u * u + v * v <= 1.0) & (z >= z_lo) & (z <= z_hi)

        return fn

    box = sp.sweep_bounds(268.0, 318.0, 19.0, 32.0, 64.0)
    xi, yi = (float(v) for v in sp.center(280.0))
    esophagus = _esophagus(lay)
    return {
        "trachea": trachea,
        "bronchie": bronchi,
        "larynx": Region(larynx(268.0, 318.0), *box, tr(0, 2, 300.0)),
        "larynx glottis": Region(larynx(284.0, 292.0), *box, tr(0, 2, 288.0)),
        "larynx supraglottis": Region(larynx(292.0, 318.0), *box, tr(0, 2, 305.0)),
        "cricopharyngeal inlet": Ellipsoid((xi, yi + 24.0, 280.0), (9.0, 7.0, 8.0)),
        "esophagus": esophagus,
        "cervical esophagus": Where(
            esophagus,
            Region(lambda x, y, z: z >= sp.z_top, esophagus.lo, esophagus.hi, 0),
            anchor=(float(sp.center(260.0)[0]), float(sp.center(260.0)[1]) + 24.0, 260.0),
        ),
    }


def _esophagus(lay: Layout) -> Tube:
    """From the cricopharyngeus down in front of the spine, then left and forward to the cardia."""
    sp = lay.spine
    pts = []
    for z, dx, dy in (
        (272.0, 0.0, 24.0),
        (250.0, 0.0, 24.0),
        (200.0, 4.0, 26.0),
        (150.0, 5.0, 26.0),
        (100.0, 4.0, 27.0),
        (60.0, 0.0, 30.0),
        (10.0, -10.0, 42.0),
        (-15.0, -22.0, 52.0),
        (-32.0, -35.0, 62.0),
    ):
        xc, yc = (float(v) for v in sp.center(z))
        pts.append((xc + dx * (lay.k if z < 60 else 1.0), yc + dy, z))
    return Tube(pts, 8.5)


def neck_parts(lay: Layout) -> dict[str, Shape]:
    tr = lay.by_trachea
    parts: dict[str, Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        s = side
        parts[f"{word} thyroid"] = Ellipsoid(tr(s * 20.0, 4.0, 252.0), (7.5, 9.0, 17.0))
        parts[f"{word} internal carotid artery"] = Tube(
            [tr(s * 33, -4, 296.0), tr(s * 36, -14, 340.0), tr(s * 30, -20, 388.0)], 3.2
        )
        parts[f"{word} internal jugular vein"] = Tube(
            [
                tr(s * 46, -26, 388.0),
                tr(s * 47, -22, 330.0),
                tr(s * 47, -12, 300.0),
                tr(s * 46, -6, 250.0),
                tr(s * 46, -5, 242.0),
            ],
            7.0,
        )
    return parts


def vessel_parts(lay: Layout) -> dict[str, Shape]:
    h, a = lay.heart, lay.A

    tr = lay.by_trachea
    sv = lay.by_spine
    asc_z = min(h.top + 15.0, 145.0)
    aorta_pts = [
        h.at(0.1, 0.0, 0.4),
        (8.0, h.c[1] - 0.1 * h.r[1], asc_z),
        (4.0, (h.c[1] + float(lay.yt(160.0))) / 2 + 10.0, 162.0),
        tr(-14, 26, 175.0),
        tr(-30, -2, 168.0),
        sv(-28, 20, 155.0),
        sv(-27, 15, 110.0),
        sv(-22, 20, 30.0),
        sv(-10, 28, -40.0),
        sv(-8, 29, -110.0),
        sv(-6, 29, -168.0),
    ]
    aorta_r = [14.0, 15.0, 14.0, 13.0, 12.5, 12.0, 12.0, 11.5, 11.0, 10.0, 9.5]
    bif = min(h.top + 30.0, 150.0)
    pa_bif = (-12.0, (h.c[1] + float(lay.yt(bif))) / 2, bif)
    rpa = [
        pa_bif,
        (30.0, float(lay.yt(bif)) + 14.0, bif - 4.0),
        (60.0, float(lay.yt(140.0)) + 4.0, 140.0),
        (85.0, float(lay.yt(125.0)) - 4.0, 125.0),
    ]
    t0, t1 = 0.25, 0.7  # the embolus lodges in the distal right pulmonary artery
    clot = [tuple(np.add(rpa[2], np.subtract(rpa[3], rpa[2]) * t)) for t in (t0, t1)]
    parts: dict[str, Shape] = {
        "aorta": Tube(aorta_pts, aorta_r),
        "heart ascending aorta": Tube(aorta_pts[:3], aorta_r[:3]),
        "pulmonary artery": Union(
            Tube(
                [h.at(-0.05, 0.55, 0.55), (-18.0, h.c[1] - 0.1 * h.r[1], h.top + 12.0), pa_bif],
                [12.0, 13.0, 12.0],
            ),
            Tube(rpa, [11.0, 10.0, 9.0, 7.0]),
            Tube(
                [
                    pa_bif,
                    (-45.0, float(lay.yt(bif)) - 12.0, bif),
                    (-70.0, float(lay.yt(138.0)) - 18.0, 138.0),
                ],
                [11.0, 9.5, 7.0],
            ),
        ),
        "pulmonary embolism": Tube(clot, [0.55 * (9.0 - 2.0 * t) for t in (t0, t1)]),
        "pulmonary vein": Union(
            Tube([(72.0, float(lay.yt(115.0)) - 6.0, 115.0), h.at(-0.1, -0.6, 0.35)], 6.5),
            Tube([(70.0, float(lay.yt(75.0)) - 14.0, 75.0), h.at(-0.1, -0.65, 0.15)], 6.5),
            Tube([(-70.0, float(lay.yt(118.0)) - 10.0, 118.0), h.at(-0.3, -0.6, 0.35)], 6.0),
            Tube([(-68.0, float(lay.yt(78.0)) - 16.0, 78.0), h.at(-0.3, -0.6, 0.1)], 6.0),
        ),
        "superior vena cava": Tube(
            [tr(26, 28, 190.0), (26.0, h.c[1] - 0.2 * h.r[1], h.top + 5.0), h.at(0.5, -0.15, 0.5)],
            10.0,
        ),
        "inferior vena cava": Tube(
            [sv(22, 27, -185.0), sv(22, 27, -100.0), sv(24, 30, -40.0), h.at(0.45, -0.25, -0.35)],
            [11.0, 11.5, 12.0, 12.0],
        ),
        "brachiocephalic trunk": Tube(
            [tr(-6, 28, 180.0), tr(10, 22, 205.0), tr(18, 12, 218.0)], 6.5
        ),
        "left brachiocephalic vein": Tube(
            [tr(-46, -5, 242.0), tr(-25, 30, 212.0), tr(5, 34, 198.0), tr(26, 28, 190.0)], 6.5
        ),
        "right brachiocephalic vein": Tube(
            [tr(46, -5, 242.0), tr(30, 18, 212.0), tr(26, 28, 190.0)], 8.0
        ),
        "right subclavian artery": Tube(
            [
                tr(18, 12, 218.0),
                tr(45, 5, 236.0),
                (0.55 * a + 20.0, float(lay.yt(240.0)), 240.0),
                (a - 12.0, float(lay.yt(216.0)) - 5.0, 216.0),
            ],
            5.0,
        ),
        "left subclavian artery": Tube(
            [
                tr(-24, 16, 174.0),
                tr(-40, 2, 232.0),
                (-0.55 * a - 20.0, float(lay.yt(240.0)), 240.0),
                (-a + 12.0, float(lay.yt(216.0)) - 5.0, 216.0),
            ],
            5.0,
        ),
        "right common carotid artery": Tube(
            [tr(18, 12, 218.0), tr(30, 2, 245.0), tr(33, -4, 296.0)], 4.5
        ),
        "left common carotid artery": Tube(
            [tr(-12, 27, 178.0), tr(-24, 10, 222.0), tr(-33, 0, 250.0), tr(-33, -4, 296.0)], 4.5
        ),
    }
    parts.update(neck_parts(lay))
    return parts
