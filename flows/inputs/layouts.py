"""Input layouts of real data: where each study's CT and masks are, and how they are read.

- ``radgenome``: RadGenome-Chest CT as distributed. CT volumes named like CT-RATE's
  (``train_1_a_1.nii.gz`` anywhere below INPUT, e.g. ``train_preprocessed/train_1/train_1a/``),
  masks in a folder ``seg_<volume>/<class name>.nii.gz`` (210 binary files, identity affine).
  The files carry no geometry, so a preset supplies it (1 x 1 x 3 mm, RAS) and the data must fit
  it: the 3 mm axis has the fewest slices and the values are Hounsfield units.
  The split is the volume name's prefix (``train_`` / ``valid_``).
- ``totalsegmentator``: ``<study>/ct.nii.gz`` with ``<study>/segmentations/<name>.nii.gz`` (one
  binary file per structure) or ``<study>/segmentations.nii.gz`` (one multi-label file whose ids
  a class map names). TotalSegmentator names become vocabulary classes through a table.
- ``generic``: ``<study>/ct.nii.gz`` with ``<study>/masks/<class name>.nii.gz``.

Discovery runs on the client and lists only what it must (the study folders; for RadGenome the
folders down to the volumes, never inside ``seg_*``). Each study is a small picklable input
whose ``load`` runs on a worker: it reads and checks the CT, then yields the masks one at a time.
Every problem is an ``InputError`` naming the file. Files are bounded by ``ReadLimits``: a
header may claim at most ``max_voxels`` voxels, and a file that a symbolic link places outside
INPUT (and outside ``--masks``) is refused unless ``follow_symlinks``; the provenance of a file
read through a link records where it resolved to.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from catalog.taxonomy import load_taxonomy
from catalog.totalsegmentator import NameMap, default_name_map, v2_class_map
from flows.inputs import nifti
from flows.inputs.nifti import Canonical, Grid, InputError
from flows.inputs.study import LoadedStudy, StudyInput
from flows.maths.boxes import BoxMask
from storage.files import Entry, Folder, is_inside, link_target, walk
from storage.location import check_study_id

LAYOUTS: tuple[str, ...] = ("radgenome", "totalsegmentator", "generic")
RADGENOME_SPACING: tuple[float, float, float] = (1.0, 1.0, 3.0)
RADGENOME_ORIENTATION = "RAS"
RADGENOME_CLASSES = 210
UNSPECIFIED_SPLIT = "unspecified"
OBLIQUE_WARNING_DEG = 1.0
_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_CT_NAME = "ct"
_MASK_FOLDER = {"generic": "masks", "totalsegmentator": "segmentations"}
_LABEL_MAP_NAME = "segmentations"
_SEG_PREFIX = "seg_"
_CT_RATE_VOLUME = re.compile(r"^(train|valid)_\d+_[A-Za-z]+_\d+$")


@dataclass(frozen=True)
class ReadLimits:
    """What a study's files may claim and where they may lie (CLI flags)."""

    max_voxels: int = nifti.DEFAULT_MAX_VOXELS
    follow_symlinks: bool = False  # read files that links place outside the input folders


@dataclass(frozen=True)
class LayoutOptions:
    """What a layout needs besides INPUT (CLI flags)."""

    split: str = UNSPECIFIED_SPLIT  # totalsegmentator, generic
    spacing: tuple[float, float, float] = RADGENOME_SPACING  # radgenome
    orientation: str = RADGENOME_ORIENTATION  # radgenome
    masks: Folder | None = None  # radgenome: where the seg_* folders are (default INPUT)
    class_map: Mapping[int, str] | None = None  # totalsegmentator multi-label (default v2)
    name_map: NameMap | None = None  # totalsegmentator names -> classes (default packaged)
    studies: tuple[str, ...] | None = None  # only these study ids
    limits: ReadLimits = ReadLimits()


def discover(layout: str, root: Folder, options: LayoutOptions | None = None) -> list[StudyInput]:
    """The studies under ``root`` in ``layout``, sorted by id (nothing is read but listings)."""
    options = options or LayoutOptions()
    if layout == "radgenome":
        nifti.grid_affine(options.spacing, options.orientation)  # ValueError on a bad preset
        return _radgenome_inputs(root, options)
    if layout not in _MASK_FOLDER:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    label_map = None
    if layout == "totalsegmentator":
        label_map = resolve_class_map(
            v2_class_map() if options.class_map is None else options.class_map,
            options.name_map or default_name_map(),
        )
    if options.studies is None and not root.exists():
        raise FileNotFoundError(f"no input folder at {root.url}")
    ids = options.studies or tuple(
        e.name for e in root.list() if e.is_dir and not e.name.startswith(".")
    )  # hidden folders (.ipynb_checkpoints, ...) are never studies
    name_map = options.name_map or default_name_map()
    return [
        FolderStudy(study_id, options.split, layout, root, name_map, label_map, options.limits)
        for study_id in sorted(ids)
    ]


# ---------------------------------------------------------------------------------------------
# Class maps (TotalSegmentator multi-label files)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedClassMap:
    """A multi-label file's ids: id -> class, id -> name with no class, id -> unknown name."""

    classes: Mapping[int, str]
    unmapped: Mapping[int, str] = field(default_factory=dict)
    unknown: Mapping[int, str] = field(default_factory=dict)


def resolve_class_map(class_map: Mapping[int, str], name_map: NameMap) -> ResolvedClassMap:
    """Map every id of a class map to a class; two ids mapping to one class is an error."""
    classes: dict[int, str] = {}
    unmapped: dict[int, str] = {}
    unknown: dict[int, str] = {}
    seen: dict[str, int] = {}
    for label_id, name in sorted(class_map.items()):
        if name not in name_map.classes:
            unknown[label_id] = name
            continue
        target = name_map.classes[name]
        if target is None:
            unmapped[label_id] = name
            continue
        if target in seen:
            first = seen[target]
            raise ValueError(
                f"class map ids {first} ({class_map[first]}) and {label_id} ({name}) both map to "
                f"the class {target!r}"
            )
        seen[target] = label_id
        classes[label_id] = target
    return ResolvedClassMap(classes, unmapped, unknown)


# ---------------------------------------------------------------------------------------------
# Study inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderStudy:
    """A TotalSegmentator or generic study: one folder holding ``ct.nii.gz`` and its masks."""

    study_id: str
    split: str
    layout: str
    root: Folder
    name_map: NameMap = field(repr=False)
    label_map: ResolvedClassMap | None = field(default=None, repr=False)
    limits: ReadLimits = ReadLimits()

    def load(self) -> LoadedStudy:
        folder = self.root.child(check_study_id(self.study_id))
        reader = _Reader(self.root, self.layout, self.split, self.limits, (self.root,))
        entries = folder.list()
        if not entries:
            raise InputError(f"the study folder {folder.url} does not exist or is empty")
        ct = _one_nifti(folder, entries, _CT_NAME, "missing CT", reader)
        return reader.load(ct, self._masks(folder, entries, reader), preset=None)

    def _masks(self, folder: Folder, entries: list[Entry], reader: _Reader) -> _MaskSource:
        subfolder = _MASK_FOLDER[self.layout]
        has_folder = any(e.is_dir and e.name == subfolder for e in entries)
        if self.layout == "totalsegmentator":
            files = [e for e in entries if not e.is_dir and _stem(e.name) == _LABEL_MAP_NAME]
            if files and has_folder:
                raise InputError(
                    f"{reader.where(folder)} has both {subfolder}/ and {files[0].name}: keep "
                    "one of the binary files or the multi-label file"
                )
            if files:
                label_file = _one_nifti(folder, entries, _LABEL_MAP_NAME, "no masks", reader)
                assert self.label_map is not None
                return _LabelMapFile(label_file, self.label_map)
            return _BinaryFiles(folder.child(subfolder), self.name_map)
        return _BinaryFiles(folder.child(subfolder), None)


@dataclass(frozen=True)
class RadGenomeStudy:
    """A RadGenome-Chest CT volume and its ``seg_<volume>`` mask folder, with a geometry preset."""

    study_id: str
    split: str
    root: Folder
    ct: tuple[Folder, str] | None
    masks: Folder | None
    spacing: tuple[float, float, float] = RADGENOME_SPACING
    orientation: str = RADGENOME_ORIENTATION
    problem: str | None = None  # found at discovery (e.g. the volume is there twice)
    limits: ReadLimits = ReadLimits()
    masks_root: Folder | None = None  # --masks, where it is not INPUT

    def load(self) -> LoadedStudy:
        check_study_id(self.study_id)
        if self.problem:
            raise InputError(self.problem)
        if self.ct is None:
            raise InputError(
                f"missing CT: there is a mask folder {self.masks.url if self.masks else ''} but "
                f"no volume {self.study_id}.nii.gz"
            )
        if self.masks is None:
            raise InputError(
                f"no masks: no folder {_SEG_PREFIX}{self.study_id} was found for "
                f"{self.ct[0].path_of(self.ct[1])}"
            )
        roots = (self.root,) if self.masks_root is None else (self.root, self.masks_root)
        reader = _Reader(self.root, "radgenome", self.split, self.limits, roots)
        source = _BinaryFiles(self.masks, None, expected_count=RADGENOME_CLASSES)
        return reader.load(self.ct, source, preset=(self.spacing, self.orientation))


# ---------------------------------------------------------------------------------------------
# Reading one study
# ---------------------------------------------------------------------------------------------


class _MaskSource:
    """Where a study's masks come from; ``masks`` yields (class, BoxMask) one at a time."""

    def masks(
        self, reader: _Reader, grid: Grid, canonical: Canonical
    ) -> Iterator[tuple[str, BoxMask]]:
        raise NotImplementedError


@dataclass
class _Reader:
    """Reads one study's files, recording what was read (path, size, sha256) and warnings."""

    root: Folder
    layout: str
    split: str
    limits: ReadLimits
    roots: tuple[Folder, ...]  # where files may lie unless limits.follow_symlinks
    inputs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def relative(self, folder: Folder, name: str) -> str:
        """A file's path relative to the input root (as messages and provenance show it)."""
        return folder.path_of(name).removeprefix(self.root.url.rstrip("/") + "/")

    def where(self, folder: Folder) -> str:
        """A folder's path relative to the input root."""
        return folder.url.removeprefix(self.root.url.rstrip("/") + "/")

    def read(self, location: tuple[Folder, str]) -> tuple[bytes, str]:
        """The file's bytes and its name relative to the input root (for messages)."""
        folder, name = location
        relative = self.relative(folder, name)
        root = next((r for r in self.roots if r.holds(folder)), self.root)
        resolved = link_target(root, folder, name)  # None: no symbolic link on the way
        escapes = resolved is not None and not any(is_inside(resolved, r) for r in self.roots)
        if escapes and not self.limits.follow_symlinks:
            raise InputError(
                f"{relative} is a symbolic link to {resolved}, outside the input folder; "
                "pass --follow-symlinks to read it"
            )
        try:
            data = folder.read(name)
        except FileNotFoundError:
            raise InputError(f"{relative} does not exist") from None
        record = {"path": relative, "bytes": len(data), "sha256": _sha256(data)}
        if resolved is not None:
            record["resolved"] = resolved
        self.inputs.append(record)
        return data, relative

    def load(
        self,
        ct_location: tuple[Folder, str],
        source: _MaskSource,
        preset: tuple[tuple[float, float, float], str] | None,
    ) -> LoadedStudy:
        """Read and check the CT now; the masks are read when the returned iterator is consumed."""
        data, name = self.read(ct_location)
        volume = nifti.decode(data, name, self.limits.max_voxels)
        del data
        file_grid = volume.grid
        affine = volume.affine if preset is None else _preset_affine(volume, *preset)
        canonical = nifti.to_ras(affine, volume.shape)
        hu = canonical.array(nifti.hounsfield(volume))
        del volume
        ras_affine = canonical.affine(affine)
        obliquity = round(nifti.obliquity_deg(ras_affine), 3)
        if obliquity > OBLIQUE_WARNING_DEG:
            self.warnings.append(
                f"the CT is oblique by {obliquity:g} degrees; it is projected along its voxel axes"
            )
        # ``attrs`` holds live lists: they are complete once the masks have been consumed, and
        # ingest consumes every mask before it writes the study.
        attrs = {
            "layout": self.layout,
            "split": self.split,
            "source_orientation": nifti.axis_codes(affine),
            "source_affine": np.asarray(affine, float).tolist(),
            "obliquity_deg": obliquity,
            "inputs": self.inputs,
            "warnings": self.warnings,
            "unmapped": self.unmapped,
        }
        if preset is not None:
            attrs["preset"] = {"spacing": list(preset[0]), "orientation": preset[1]}
        return LoadedStudy(
            ct=hu,
            spacing=nifti.spacing_of(ras_affine),
            affine=ras_affine,
            masks=source.masks(self, file_grid, canonical),
            attrs=attrs,
        )


@dataclass(frozen=True)
class _BinaryFiles(_MaskSource):
    """One binary NIfTI file per class in a folder, named by class (or TotalSegmentator) name."""

    folder: Folder
    name_map: NameMap | None  # None: file names are vocabulary class names
    expected_count: int | None = None

    def masks(
        self, reader: _Reader, grid: Grid, canonical: Canonical
    ) -> Iterator[tuple[str, BoxMask]]:
        for name, file in self._files(reader):
            data, relative = reader.read((self.folder, file))
            mask_grid, box = nifti.decode_mask(data, relative, reader.limits.max_voxels)
            del data
            nifti.check_same_grid(grid, mask_grid)
            yield name, canonical.box(box)

    def _files(self, reader: _Reader) -> list[tuple[str, str]]:
        """(class, file name) for every mask file, checked before any is read."""
        entries = self.folder.list()
        files = [e.name for e in entries if not e.is_dir and _stem(e.name)]
        ignored = [e.name for e in entries if not e.name.startswith(".") and e.name not in files]
        if ignored:
            reader.warnings.append(
                f"ignored what is not a NIfTI file in {reader.where(self.folder)}: "
                + ", ".join(ignored)
            )
        if not files:
            raise InputError(f"no masks: {reader.where(self.folder)}/ holds no .nii.gz files")
        by_class: dict[str, str] = {}
        for file in files:
            target = self._class_of(_stem(file) or "", reader.relative(self.folder, file))
            if target is None:
                reader.unmapped.append(_stem(file) or file)
                continue
            if target in by_class:
                raise InputError(
                    f"two mask files map to the class {target!r}: {by_class[target]} and {file} "
                    f"(in {reader.where(self.folder)})"
                )
            by_class[target] = file
        if self.expected_count and len(by_class) != self.expected_count:
            reader.warnings.append(
                f"{len(by_class)} mask files instead of {self.expected_count}; the missing classes "
                "are absent (unknown), not empty"
            )
        return sorted(by_class.items(), key=lambda item: item[1])

    def _class_of(self, stem: str, file: str) -> str | None:
        if self.name_map is not None:
            try:
                return self.name_map.resolve(stem)
            except KeyError as error:
                raise InputError(f"{file}: {error.args[0]}") from None
        taxonomy = load_taxonomy()
        if stem not in taxonomy.names:
            close = difflib.get_close_matches(stem, taxonomy.names, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(
                f"{file}: label name {stem!r} maps to nothing: it is not one of the "
                f"{len(taxonomy)} class names{hint}"
            )
        return stem


@dataclass(frozen=True)
class _LabelMapFile(_MaskSource):
    """One multi-label NIfTI file whose ids a class map names."""

    location: tuple[Folder, str]
    class_map: ResolvedClassMap

    def masks(
        self, reader: _Reader, grid: Grid, canonical: Canonical
    ) -> Iterator[tuple[str, BoxMask]]:
        data, relative = reader.read(self.location)
        volume = nifti.decode(data, relative, reader.limits.max_voxels)
        del data
        nifti.check_same_grid(grid, volume.grid)
        labels = canonical.array(nifti.label_map(volume))
        del volume
        boxes = ndimage.find_objects(labels)  # tight box of every id present, in one pass
        present = [i + 1 for i, box in enumerate(boxes) if box is not None]
        if not present:
            reader.warnings.append(f"{relative} holds no label at all: every class is empty")
        self._check_ids(present, labels, boxes, relative, reader)
        for label_id, name in sorted(self.class_map.classes.items(), key=lambda item: item[1]):
            box = boxes[label_id - 1] if label_id <= len(boxes) else None
            if box is None:
                yield name, BoxMask((0, 0, 0), np.zeros((0, 0, 0), bool))  # given, and empty
            else:
                origin = tuple(int(s.start) for s in box)
                yield name, BoxMask(origin, labels[box] == label_id)  # type: ignore[arg-type]

    def _check_ids(
        self, present: list[int], labels: np.ndarray, boxes: list, relative: str, reader: _Reader
    ) -> None:
        for label_id in present:
            if label_id in self.class_map.classes:
                continue
            voxels = int(np.count_nonzero(labels[boxes[label_id - 1]] == label_id))
            if label_id in self.class_map.unmapped:
                reader.unmapped.append(self.class_map.unmapped[label_id])
            elif label_id in self.class_map.unknown:
                name = self.class_map.unknown[label_id]
                raise InputError(
                    f"{relative}: label id {label_id} ({voxels:,} voxels) is named {name!r}, "
                    "which maps to nothing: it is not in the TotalSegmentator table (add it "
                    "there, or pass --label-map with a table that has it)"
                )
            else:
                raise InputError(
                    f"{relative}: label id {label_id} ({voxels:,} voxels) is not in the class map "
                    "(pass --class-map with the ids this file uses)"
                )


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


def _radgenome_inputs(root: Folder, options: LayoutOptions) -> list[StudyInput]:
    """Every CT-RATE-named volume below ``root`` with its ``seg_<volume>`` folder."""
    if not root.exists():
        raise FileNotFoundError(f"no input folder at {root.url}")
    volumes: dict[str, list[tuple[Folder, str]]] = {}
    segs: dict[str, list[Folder]] = {}
    for folder, entries in walk(root, prune=_not_entered):
        _collect(folder, entries, volumes, segs, with_volumes=True)
    if options.masks is not None and options.masks.url != root.url:
        segs = {}
        for folder, entries in walk(options.masks, prune=_not_entered):
            _collect(folder, entries, volumes, segs, with_volumes=False)
    inputs: list[StudyInput] = []
    for study_id in sorted(set(volumes) | set(segs)):
        if options.studies is not None and study_id not in options.studies:
            continue
        found, masks = volumes.get(study_id, []), segs.get(study_id, [])
        problem = None
        if len(found) > 1 or len(masks) > 1:
            places = [f.path_of(n) for f, n in found] + [m.url for m in masks]
            problem = f"the volume or its mask folder is there more than once: {', '.join(places)}"
        inputs.append(
            RadGenomeStudy(
                study_id,
                study_id.split("_", 1)[0],
                root,
                found[0] if found else None,
                masks[0] if masks else None,
                options.spacing,
                options.orientation,
                problem,
                options.limits,
                options.masks,
            )
        )
    for study_id in options.studies or ():
        if study_id not in volumes and study_id not in segs:
            problem = (
                f"no volume {study_id}.nii.gz and no folder {_SEG_PREFIX}{study_id} "
                f"under {root.url}"
            )
            inputs.append(RadGenomeStudy(study_id, "", root, None, None, problem=problem))
    return sorted(inputs, key=lambda item: item.study_id)


def _not_entered(name: str) -> bool:
    """Folders discovery does not walk into: mask folders (listed on workers) and hidden ones."""
    return name.startswith((_SEG_PREFIX, "."))


def _collect(
    folder: Folder,
    entries: list[Entry],
    volumes: dict[str, list[tuple[Folder, str]]],
    segs: dict[str, list[Folder]],
    *,
    with_volumes: bool,
) -> None:
    for entry in entries:
        stem = _stem(entry.name)
        if entry.is_dir and entry.name.startswith(_SEG_PREFIX):
            segs.setdefault(entry.name.removeprefix(_SEG_PREFIX), []).append(
                folder.child(entry.name)
            )
        elif with_volumes and not entry.is_dir and stem and _CT_RATE_VOLUME.match(stem):
            volumes.setdefault(stem, []).append((folder, entry.name))


def _preset_affine(
    volume: nifti.Volume, spacing: tuple[float, float, float], orientation: str
) -> np.ndarray:
    """The preset's geometry, after checking that the volume is as RadGenome distributes it."""
    if not np.allclose(volume.affine, np.eye(4), atol=1e-6):
        raise InputError(
            f"{volume.name} has a non-identity affine (orientation "
            f"{nifti.axis_codes(volume.affine)}, spacing "
            f"{nifti.format_mm(nifti.spacing_of(volume.affine))}): RadGenome volumes are "
            "distributed with an identity affine and take their geometry from the preset; "
            "for volumes that carry their own geometry use --layout generic"
        )
    coarse = int(np.argmax(spacing))
    others = [volume.shape[a] for a in range(3) if a != coarse]
    if max(spacing) > min(spacing) and volume.shape[coarse] >= min(others):
        raise InputError(
            f"{volume.name} does not fit the preset: spacing {nifti.format_mm(spacing)} "
            f"makes axis {coarse + 1} the {spacing[coarse]:g} mm one, but it has "
            f"{volume.shape[coarse]} slices against {' and '.join(map(str, others))} on the other "
            "axes (the coarse axis must have the fewest); set --spacing and --orientation to "
            "match the data"
        )
    return nifti.grid_affine(spacing, orientation)


def _one_nifti(
    folder: Folder, entries: list[Entry], stem: str, missing: str, reader: _Reader
) -> tuple[Folder, str]:
    """The one file ``<stem>.nii.gz`` or ``<stem>.nii`` of a folder."""
    found = [e.name for e in entries if not e.is_dir and _stem(e.name) == stem]
    if not found:
        raise InputError(f"{missing}: no {stem}.nii.gz in {reader.where(folder)}/")
    if len(found) > 1:
        raise InputError(f"{reader.where(folder)}/ has both {found[0]} and {found[1]}; keep one")
    return folder, found[0]


def _stem(file_name: str) -> str | None:
    """The name without ``.nii.gz`` / ``.nii``; None for other files and hidden files."""
    if file_name.startswith("."):
        return None
    for suffix in _NIFTI_SUFFIXES:
        if file_name.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
