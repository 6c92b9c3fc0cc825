"""The ground truth a phantom is built with, and the field of view it spans by default."""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_FOV_MM: tuple[float, float, float] = (560.0, 400.0, 800.0)
"""Field of view (x, y, z) in mm: shoulders and arms, chest depth, skull base to proximal femurs."""


@dataclass(frozen=True)
class PhantomGeometry:
    """Ground-truth geometry a phantom is built with (mm and degrees).

    How each value is realised, exactly, so a measurement module can be verified against it:

    - ``thoracic_width_mm``: the thoracic cavity's cross-section at height z is the superellipse
      ``|x / a(z)|**3 + |(y - y0(z)) / b(z)|**3 <= 1`` centred on the midline x = 0, with
      ``a(z) = thoracic_width_mm / 2`` over the whole lower thorax (from the costophrenic recesses
      up to the bottom of T7) and tapering above it to the apex. The cavity mask (which contains
      the lungs, heart and mediastinum) therefore spans exactly ``|x| <= thoracic_width_mm / 2``
      at its widest: its left-right extent is ``thoracic_width_mm`` (within one voxel), and so
      is that of the two lungs' outer edges.
    - ``heart_width_mm``: the heart (the union of atria, ventricles and myocardium) is an
      axis-aligned ellipsoid with x semi-axis ``heart_width_mm / 2`` (clipped by the cavity,
      which never reaches its lateral extremes), centred left of the midline. Its left-right
      extent is ``heart_width_mm`` (within one voxel), and the analytic cardiothoracic ratio is
      ``heart_width_mm / thoracic_width_mm`` (``cardiothoracic_ratio``).
    - ``kyphosis_deg``: in the sagittal plane (y against z) the centreline of the vertebral
      bodies from the top of T1 to the bottom of T12 (a vertical chord of length
      L = 282 mm, twelve levels of equal height) is a circular arc, convex posteriorly, whose
      tangents at the two ends differ by exactly ``kyphosis_deg``: radius
      ``R = L / (2 sin(kyphosis / 2))``, sagitta ``R (1 - cos(kyphosis / 2))``. Each vertebra
      is one cross-section translated (sheared, not rotated) along the centreline slice by
      slice, so the T1..T12 centroids lie, up to voxelisation, on that arc shifted by a
      constant offset: a circle fitted to them has radius R, the tangents at the T1 and T12
      centroids differ by ``2 asin(11/12 sin(kyphosis / 2))`` (about 11/12 of the angle), and
      the fitted arc extrapolated to the end plates gives ``kyphosis_deg``. The cervical and
      lumbar segments bend back smoothly (lordosis) to a vertical tangent at C1 and below L6.
    - ``scoliosis_deg``: the same construction in the frontal plane (x against z) over T1..T12:
      a circular arc whose end tangents differ by ``|scoliosis_deg|``. Positive values are
      convex to the patient's RIGHT (the apex at larger x, larger i), negative to the left,
      0 is straight (every vertebral centroid at the same x). Cervical and lumbar segments
      curve back (compensatory curves) to vertical at C1 and at the bottom of L6.

    The seed of ``make_phantom`` never changes these values; it varies organ positions and sizes
    by a few per cent and the CT noise.
    """

    heart_width_mm: float = 130.0
    thoracic_width_mm: float = 280.0
    scoliosis_deg: float = 0.0
    kyphosis_deg: float = 35.0

    def __post_init__(self) -> None:
        for name in ("heart_width_mm", "thoracic_width_mm", "scoliosis_deg", "kyphosis_deg"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}.")
        if not 200.0 <= self.thoracic_width_mm <= 320.0:
            raise ValueError(
                f"thoracic_width_mm must be between 200 and 320 mm, got {self.thoracic_width_mm}."
            )
        if not 0.3 <= self.cardiothoracic_ratio <= 0.8:
            raise ValueError(
                "heart_width_mm / thoracic_width_mm (the cardiothoracic ratio) must be between "
                f"0.3 and 0.8, got {self.cardiothoracic_ratio:.3f}."
            )
        if not 0.0 <= self.kyphosis_deg <= 80.0:
            raise ValueError(f"kyphosis_deg must be between 0 and 80, got {self.kyphosis_deg}.")
        if abs(self.scoliosis_deg) > 80.0:
            raise ValueError(f"scoliosis_deg must be between -80 and 80, got {self.scoliosis_deg}.")

    @property
    def cardiothoracic_ratio(self) -> float:
        """The analytic cardiothoracic ratio, heart width over inner thoracic width."""
        return self.heart_width_mm / self.thoracic_width_mm
