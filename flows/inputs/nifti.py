"""Opening, checking and canonicalising NIfTI volumes (bytes in, numpy out; nibabel only).

Every check raises ``InputError`` with a sentence naming the file and the problem: truncated or
corrupt gzip, not NIfTI, not 3D, zero or negative spacing, NaN or infinite values, values that
are not Hounsfield units, masks that are not binary or not on the CT's grid. Hostile files are
refused before memory grows: a header claiming more than ``max_voxels`` voxels, or more bytes
than the file can decode to (DEFLATE expands at most 1032-fold), fails before any voxel buffer
is allocated, and a gzip stream that goes on inflating past the end of the voxels its header
promises is stopped ``TRAILING_SLACK`` bytes later. Volumes are brought
to RAS-canonical voxel order the way ``nibabel.as_closest_canonical`` does, with the CT's
reordering applied unchanged to its masks so that they stay aligned voxel for voxel.
"""

from __future__ import annotations

import gzip
import io
import itertools
import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation
from zlib_ng import zlib_ng

from flows.codecs.plane_reader import (
    GZIP_MAGIC,
    SparseGzipError,
    open_dense,
    open_planes,
    set_bounds,
)
from flows.maths.boxes import BoxMask, box_mask

DEFAULT_MAX_VOXELS = 2**29  # 512 x 512 x 2048: a 1 GiB int16 CT, 7 times a CT-RATE volume
DEFLATE_MAX_RATIO = 1032  # DEFLATE's largest expansion (258-byte copies of 2-bit codes)
TRAILING_SLACK = 1 << 16  # decoded bytes tolerated after the voxels (NIfTI defines none)
GRID_TOLERANCE_VOXELS = 0.01  # masks may differ from the CT's grid by 1/100 voxel at any corner
AIR_HU = -900.0  # a chest CT's darkest voxels are air (about -1000 HU) ...
TISSUE_HU = 100.0  # ... and its brightest are at least soft tissue (bone in practice)
_MAX_REPORTED = 64  # distinct non-zero values collected for a "not a binary mask" message
_SLAB = 32  # slices converted to Hounsfield units at a time (bounds float64 temporaries)
_RAS = np.array([[0, 1], [1, 1], [2, 1]], float)
_WORLD_AXIS = {"L": 0, "R": 0, "P": 1, "A": 1, "I": 2, "S": 2}


class InputError(ValueError):
    """A problem with a study's input; the message is a sentence naming the file."""


@dataclass(frozen=True, eq=False)
class Grid:
    """Where a volume's voxels are: its file name, shape and affine."""

    name: str
    shape: tuple[int, int, int]
    affine: np.ndarray


@dataclass(frozen=True, eq=False)
class Volume:
    """A decoded 3D NIfTI volume: stored values (unscaled), affine and scaling."""

    name: str
    data: np.ndarray
    affine: np.ndarray
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def scaled(self) -> bool:
        return (self.slope, self.intercept) != (1.0, 0.0)

    @property
    def grid(self) -> Grid:
        return Grid(self.name, self.shape, self.affine)


@dataclass(frozen=True, eq=False)
class Canonical:
    """How one grid is brought to RAS-canonical voxel order (applied to a CT and its masks)."""

    ornt: np.ndarray
    shape: tuple[int, int, int]

    @property
    def identity(self) -> bool:
        return bool(np.array_equal(self.ornt, _RAS))

    def array(self, data: np.ndarray) -> np.ndarray:
        """``data`` (on this grid) in canonical order: a view, no copy."""
        return data if self.identity else apply_orientation(data, self.ornt)

    def box(self, mask: BoxMask) -> BoxMask:
        """A box of this grid (origin and data) where it lies in the canonical array."""
        if self.identity or not mask.data.size:
            return mask
        origin = [0, 0, 0]
        for axis, (to, flip) in enumerate(self.ornt):
            start, size = mask.origin[axis], mask.data.shape[axis]
            origin[int(to)] = self.shape[axis] - (start + size) if flip < 0 else start
        return BoxMask(tuple(origin), apply_orientation(mask.data, self.ornt))  # type: ignore[arg-type]

    def affine(self, affine: np.ndarray) -> np.ndarray:
        """The affine of the canonical array."""
        return affine if self.identity else affine @ inv_ornt_aff(self.ornt, self.shape)


def decode(data: bytes, name: str, max_voxels: int = DEFAULT_MAX_VOXELS) -> Volume:
    """A 3D volume from the bytes of a ``.nii`` or ``.nii.gz`` file (NIfTI-1 or NIfTI-2)."""
    with _opened(data, name, open_dense) as stream:
        return _dense(stream, _read_header(stream, name, _Budget.of(data, max_voxels)))


def decode_mask(
    data: bytes, name: str, max_voxels: int = DEFAULT_MAX_VOXELS
) -> tuple[Grid, BoxMask]:
    """A binary mask file as its grid and its tight box (file voxel order), decoded slice by slice.

    All-zero slices are skipped by the plane reader (without being written, where the C reader
    is built) and the others cropped to what they hold, so the cost is one pass over the
    compressed bytes plus work in proportion to the structure. Checks are those of ``binary``.
    """
    with _opened(data, name, open_planes) as stream:
        header = _read_header(stream, name, _Budget.of(data, max_voxels))
        if header.inter != 0.0 or not math.isfinite(header.slope):
            # zero bytes are not background here: take the dense path
            return header.grid, box_mask(binary(_dense(stream, header)))
        nx, ny, nz = header.shape
        plane = bytearray(nx * ny * header.dtype.itemsize)
        values = np.frombuffer(plane, header.dtype).reshape(ny, nx)  # file order: j rows, i columns
        scan, k = _SliceScan(name, header.dtype), 0
        while k < nz:
            skipped = stream.next_set_plane(plane, nz - k)
            if skipped < 0:
                _truncated(header, stream.position)
            k += skipped
            if k < nz:
                first, stop = stream.span  # rows outside hold only zero bytes
                row = len(plane) // ny
                scan.add(k, first // row, values[first // row : (stop - 1) // row + 1])
                k += 1
        _finish(stream, header, stream.finish)
    return header.grid, scan.box()


def _dense(stream: BinaryIO, header: _Header) -> Volume:
    """The whole volume, read straight into one array in the file's (Fortran) order."""
    values = np.empty(header.count, header.dtype)
    _read_exactly(stream, values, header)
    _finish(stream, header, lambda: _read_to_end(stream))
    shape = header.shape
    return Volume(
        header.name, values.reshape(shape, order="F"), header.affine, header.slope, header.inter
    )


class _SliceScan:
    """The set voxels of a mask, one axial plane at a time: tight crops and the checks of binary."""

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name, self.dtype = name, dtype
        self.crops: list[tuple[int, int, int, np.ndarray]] = []  # (k, j0, i0, crop)
        self.foreground: set[float] = set()
        self.nans = self.infs = 0
        self.many = False  # more distinct values than are collected for the message

    def add(self, k: int, j0: int, values: np.ndarray) -> None:
        """Rows ``j0``, ``j0 + 1``, ... (columns i) of plane ``k``: every row with a non-zero
        byte of the plane is among them."""
        if self.dtype.kind == "f":
            self.nans += int(np.isnan(values).sum())
            self.infs += int(np.isinf(values).sum())
        bounds = set_bounds(values)
        if bounds is None:  # a float plane of -0.0 has non-zero bytes and no set voxel
            return
        r0, r1, c0, c1 = bounds
        crop = values[r0:r1, c0:c1]
        if self.dtype.kind in "bu" and crop.max() == 1:
            self.foreground.add(1.0)  # a 0/1 plane, the common case
        elif len(self.foreground) < _MAX_REPORTED:
            self.foreground.update(float(v) for v in np.unique(crop[crop != 0]))
        else:
            self.many = True
        self.crops.append((k, j0 + r0, c0, crop != 0))

    def box(self) -> BoxMask:
        """The mask's tight box in (i, j, k) order, after the file-wide checks."""
        if self.nans or self.infs:
            raise InputError(
                f"{self.name} contains {self.nans:,} NaN and {self.infs:,} infinite voxels"
            )
        if len(self.foreground) > 1:
            _not_binary(self.name, sorted(self.foreground), self.many)
        if not self.crops:
            return BoxMask((0, 0, 0), np.zeros((0, 0, 0), bool))
        k0, k1 = self.crops[0][0], self.crops[-1][0] + 1
        j0 = min(j for _, j, _, _ in self.crops)
        i0 = min(i for _, _, i, _ in self.crops)
        j1 = max(j + c.shape[0] for _, j, _, c in self.crops)
        i1 = max(i + c.shape[1] for _, _, i, c in self.crops)
        out = np.zeros((k1 - k0, j1 - j0, i1 - i0), bool)  # (k, j, i): the file's memory order
        for k, j, i, crop in self.crops:
            out[k - k0, j - j0 : j - j0 + crop.shape[0], i - i0 : i - i0 + crop.shape[1]] = crop
        return BoxMask((i0, j0, k0), out.transpose(2, 1, 0))


def hounsfield(volume: Volume) -> np.ndarray:
    """The CT in int16 Hounsfield units: scale slope/intercept applied, checked, rounded."""
    data = volume.data
    if data.dtype.kind == "f":
        _check_finite(data, volume.name)
    if not (math.isfinite(volume.slope) and math.isfinite(volume.intercept)):
        raise InputError(
            f"{volume.name} has a non-finite scale (slope {volume.slope}, "
            f"intercept {volume.intercept})"
        )
    if not volume.scaled and data.dtype.kind in "iu" and np.can_cast(data.dtype, np.int16):
        hu = data.astype(np.int16, copy=False)  # the common case: stored as int16 HU already
        _check_hounsfield_range(float(hu.min()), float(hu.max()), volume)
        return hu
    out = np.empty(volume.shape, np.int16)
    low, high = np.inf, -np.inf
    for k in range(0, volume.shape[2], _SLAB):
        slab = data[:, :, k : k + _SLAB].astype(np.float64) * volume.slope + volume.intercept
        slab = np.rint(slab)
        low, high = min(low, float(slab.min())), max(high, float(slab.max()))
        if low < np.iinfo(np.int16).min or high > np.iinfo(np.int16).max:
            raise InputError(
                f"{volume.name} holds values from {low:g} to {high:g} after scaling, beyond the "
                "int16 range of Hounsfield units"
            )
        out[:, :, k : k + _SLAB] = slab
    _check_hounsfield_range(low, high, volume)
    return out


def binary(volume: Volume) -> np.ndarray:
    """A mask as booleans; the file must hold zero and at most one other value."""
    values = _scaled(volume)
    foreground = values[values != 0]
    if foreground.size and foreground.min() != foreground.max():
        _not_binary(volume.name, np.unique(foreground).tolist(), more=False)
    return values != 0


def _not_binary(name: str, found: list[float], more: bool) -> None:
    shown = ", ".join(f"{v:g}" for v in found[:5]) + (", ..." if len(found) > 5 or more else "")
    raise InputError(
        f"{name} is not a binary mask: it holds {'more than ' if more else ''}{len(found)} "
        f"different non-zero values ({shown}); a label map needs a multi-label layout"
    )


def label_map(volume: Volume) -> np.ndarray:
    """A multi-label volume as non-negative integers (0 is background)."""
    values = _scaled(volume)
    if values.dtype.kind == "f" and not np.array_equal(values, np.rint(values)):
        raise InputError(f"{volume.name} is not a label map: it holds non-integer values")
    if values.size and values.min() < 0:
        raise InputError(f"{volume.name} is not a label map: it holds negative values")
    top = int(values.max()) if values.size else 0
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32
    return values.astype(dtype, copy=False)


def check_same_grid(ct: Grid, mask: Grid) -> None:
    """Raise unless ``mask`` has the CT's shape and (within tolerance) its affine."""
    if mask.shape != ct.shape:
        raise InputError(
            f"{mask.name} has shape {_fmt_shape(mask.shape)} but the CT {ct.name} has "
            f"{_fmt_shape(ct.shape)}: a mask must lie on the CT's grid"
        )
    corners = np.array([[*c, 1.0] for c in itertools.product(*[(0, n - 1) for n in ct.shape])]).T
    distance = float(np.linalg.norm((mask.affine - ct.affine) @ corners, axis=0).max())
    tolerance = GRID_TOLERANCE_VOXELS * min(spacing_of(ct.affine))
    if distance > tolerance:
        raise InputError(
            f"{mask.name} is not on the CT's grid: its voxel corners lie up to {distance:.3g} mm "
            f"from the CT's (tolerance {tolerance:.2g} mm); orientation {axis_codes(mask.affine)} "
            f"vs {axis_codes(ct.affine)}, spacing {format_mm(spacing_of(mask.affine))} vs "
            f"{format_mm(spacing_of(ct.affine))}"
        )


def to_ras(affine: np.ndarray, shape: tuple[int, int, int]) -> Canonical:
    """The reordering (axis permutation and flips) that makes this grid RAS-canonical."""
    return Canonical(io_orientation(affine), shape)


def grid_affine(spacing: tuple[float, float, float], orientation: str) -> np.ndarray:
    """The affine of a grid with ``spacing`` (mm along i, j, k) and axis codes like ``RAS``."""
    codes = orientation.upper()
    if len(codes) != 3 or sorted(_WORLD_AXIS.get(c, 9) for c in codes) != [0, 1, 2]:
        raise ValueError(
            f"orientation {orientation!r} must be three letters, one of L/R, A/P and S/I each "
            "(like RAS, LPS or LAS)"
        )
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing {format_mm(spacing)} must be positive")
    affine = np.eye(4)
    for axis, (world, flip) in enumerate(axcodes2ornt(tuple(codes))):
        affine[:3, axis] = 0.0
        affine[int(world), axis] = flip * spacing[axis]
    return affine


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis."""
    return tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))  # type: ignore[return-value]


def axis_codes(affine: np.ndarray) -> str:
    """Where each array axis points, like ``LAS`` (``nibabel.aff2axcodes``)."""
    return "".join(nib.aff2axcodes(affine))


def obliquity_deg(affine: np.ndarray) -> float:
    """The largest angle between an array axis and the world axis nearest to it, in degrees."""
    return float(np.degrees(np.abs(nib.affines.obliquity(affine)).max()))


@dataclass(frozen=True, eq=False)
class _Header:
    """What a NIfTI header says about the voxel data that follows it."""

    name: str
    shape: tuple[int, int, int]
    count: int  # voxels stored (a 4D file of one volume has trailing singleton axes)
    dtype: np.dtype
    offset: int  # where the voxel data starts in the decoded file
    affine: np.ndarray
    slope: float
    inter: float

    @property
    def grid(self) -> Grid:
        return Grid(self.name, self.shape, self.affine)

    @property
    def end(self) -> int:
        """The decoded file's length up to its last voxel."""
        return self.offset + self.count * self.dtype.itemsize


@contextmanager
def _opened(data: bytes, name: str, opener: Callable[[bytes], Any]) -> Iterator[Any]:
    """The file's decoded bytes as the stream ``opener`` makes; gzip errors name the file."""
    try:
        with closing(opener(data)) as stream:
            yield stream
    except EOFError:
        raise InputError(
            f"{name} is truncated: its gzip stream ends early (an interrupted download or copy?)"
        ) from None
    except (gzip.BadGzipFile, zlib.error, zlib_ng.error, SparseGzipError) as error:
        raise InputError(f"{name} is corrupt: not a valid gzip stream ({error})") from None


@dataclass(frozen=True)
class _Budget:
    """What a file's header may claim: at most ``max_voxels`` voxels, ``decodable`` bytes."""

    size: int  # bytes in the file
    compressed: bool
    max_voxels: int

    @classmethod
    def of(cls, data: bytes, max_voxels: int) -> _Budget:
        return cls(len(data), data[:2] == GZIP_MAGIC, max_voxels)

    @property
    def decodable(self) -> int:
        """The most bytes the file can decode to."""
        return self.size * DEFLATE_MAX_RATIO + 1024 if self.compressed else self.size


def _read_header(stream: BinaryIO, name: str, budget: _Budget) -> _Header:
    """Read and check the header, leaving ``stream`` at the first voxel; a header that claims
    more than ``budget`` is refused before anything is allocated for its voxels."""
    head = stream.read(348)
    header_class = _format(head, name)
    if header_class is nib.Nifti2Header:
        head += stream.read(540 - len(head))
    try:
        # check=False: nibabel would otherwise "fix" zero spacing to 1 mm before we see it
        header = header_class.from_fileobj(io.BytesIO(head), check=False)
    except Exception as error:
        raise InputError(f"{name} has an unreadable NIfTI header ({error})") from None
    stored_shape = tuple(int(n) for n in header.get_data_shape())
    shape = _three_d(stored_shape, name)
    dtype = header.get_data_dtype()
    _check_voxel_type(dtype, name)
    _check_pixdim(header, name)
    offset = max(int(header.get_data_offset()), len(head))
    parsed = _Header(name, shape, math.prod(stored_shape), dtype, offset, np.eye(4), 1.0, 0.0)
    _check_size(parsed, budget)
    _read_exactly(stream, bytearray(offset - len(head)), parsed, done=len(head) - offset)
    try:
        affine = np.asarray(header.get_best_affine(), float)
        slope, inter = header.get_slope_inter()
    except Exception as error:
        raise InputError(f"{name} could not be read as NIfTI ({error})") from None
    _check_affine(affine, name)
    return _Header(
        name,
        shape,
        parsed.count,
        dtype,
        offset,
        affine,
        1.0 if slope is None else float(slope),
        0.0 if inter is None else float(inter),
    )


def _check_size(header: _Header, budget: _Budget) -> None:
    """Refuse a header whose voxels exceed the limit or the file."""
    if header.count > budget.max_voxels:
        raise InputError(
            f"{header.name} claims {_fmt_shape(header.shape)} = {header.count:,} voxels, more "
            f"than the limit of {budget.max_voxels:,} (--max-voxels)"
        )
    if header.end <= budget.decodable:
        return
    if not budget.compressed:
        _truncated(header, budget.decodable)
    raise InputError(
        f"{header.name} is truncated or its header is wrong: the header promises {header.end:,} "
        f"bytes, more than its {budget.size:,} compressed bytes can "
        f"hold ({budget.decodable:,} at gzip's largest expansion)"
    )


def _finish(stream: BinaryIO, header: _Header, to_end: Callable[[], None]) -> None:
    """Decode what follows the voxels (gzip checks its CRC and length only at the end), but
    never more than ``TRAILING_SLACK`` bytes of it: a stream that goes on is refused."""
    if len(stream.read(TRAILING_SLACK + 1)) > TRAILING_SLACK:
        raise InputError(
            f"{header.name} decodes to more than its header promises ({header.end:,} bytes, and "
            f"more than {TRAILING_SLACK:,} follow): a gzip bomb or a wrong header"
        )
    to_end()


def _read_exactly(stream: BinaryIO, buffer: Any, header: _Header, done: int = 0) -> None:
    """Fill ``buffer`` from the voxel data, ``done`` bytes in; a short file is named."""
    view = memoryview(buffer).cast("B")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            _truncated(header, header.offset + done + got)
        got += n


def _truncated(header: _Header, has: int) -> NoReturn:
    raise InputError(
        f"{header.name} is truncated: its header promises {header.end:,} bytes, the file has "
        f"{has:,}"
    )


def _read_to_end(stream: BinaryIO) -> None:
    """Decode what follows the voxels too: gzip checks the stream's CRC only at its end."""
    while stream.read(1 << 20):
        pass


def _format(raw: bytes, name: str) -> type:
    """NIfTI-1 or NIfTI-2 header class, from the header size and magic."""
    if len(raw) >= 348:
        for order in ("<", ">"):
            size = int(np.frombuffer(raw[:4], dtype=f"{order}i4")[0])
            if size == 348 and raw[344:348] == b"n+1\x00":
                return nib.Nifti1Header
            if size == 540 and raw[4:8] == b"n+2\x00":
                return nib.Nifti2Header
            if size == 348 and raw[344:348] == b"ni1\x00":
                raise InputError(f"{name} is a NIfTI header without its .img data file")
    raise InputError(f"{name} is not a NIfTI file")


def _three_d(shape: tuple[int, ...], name: str) -> tuple[int, int, int]:
    """The 3D shape; trailing singleton dimensions (x, y, z, 1) are dropped."""
    kept = list(shape)
    while len(kept) > 3 and kept[-1] == 1:
        kept.pop()
    if len(kept) > 3:
        raise InputError(
            f"{name} is {len(kept)}D (shape {_fmt_shape(shape)}); expected one 3D volume"
        )
    if len(kept) < 3 or min(kept) < 2:
        raise InputError(
            f"{name} is 2D (shape {_fmt_shape(shape)}); expected a 3D volume with at least two "
            "voxels along every axis"
        )
    return tuple(kept)  # type: ignore[return-value]


def _check_voxel_type(dtype: np.dtype, name: str) -> None:
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise InputError(f"{name} stores {dtype} voxels; expected integers or floats")


def _check_pixdim(header: nib.Nifti1Header, name: str) -> None:
    pixdim = [float(v) for v in header["pixdim"][1:4]]
    if not all(math.isfinite(v) and v > 0 for v in pixdim):
        raise InputError(
            f"{name} has zero, negative or non-finite voxel spacing in its header (pixdim "
            f"{format_mm(pixdim)})"
        )


def _check_affine(affine: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(affine)):
        raise InputError(f"{name} has a non-finite affine")
    spacing = spacing_of(affine)
    if min(spacing) <= 0 or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(
            f"{name} has a degenerate affine (voxel spacing {format_mm(spacing)}): zero spacing or "
            "axes that are not independent"
        )


def _check_finite(data: np.ndarray, name: str) -> None:
    nans, infs = 0, 0
    for k in range(0, data.shape[2], _SLAB):
        slab = data[:, :, k : k + _SLAB]
        nans += int(np.isnan(slab).sum())
        infs += int(np.isinf(slab).sum())
    if nans or infs:
        raise InputError(f"{name} contains {nans:,} NaN and {infs:,} infinite voxels")


def _check_hounsfield_range(low: float, high: float, volume: Volume) -> None:
    if low > AIR_HU or high < TISSUE_HU:
        hint = ""
        if high <= 1.0:
            hint = " (intensities normalised to 0..1 or -1..1?)"
        elif low >= 0:
            hint = " (unsigned values: a missing rescale intercept such as -1024?)"
        raise InputError(
            f"{volume.name} does not look like a CT in Hounsfield units: its values run from "
            f"{low:g} to {high:g}, but a chest CT has air near -1000 HU (at most {AIR_HU:g}) and "
            f"tissue or bone above {TISSUE_HU:g} HU{hint}"
        )


def _scaled(volume: Volume) -> np.ndarray:
    values = volume.data
    if volume.scaled:
        values = values.astype(np.float64) * volume.slope + volume.intercept
    if values.dtype.kind == "f":
        _check_finite(values, volume.name)
    return values


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


def format_mm(values: tuple[float, ...] | list[float]) -> str:
    """Spacings as ``1 x 1 x 3 mm``."""
    return " x ".join(f"{v:g}" for v in values) + " mm"
