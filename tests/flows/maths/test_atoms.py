"""Atoms: overlapping class masks as one uint16 label map plus one region per class."""

import numpy as np
import pytest

from flows.maths import atoms


def _overlapping(seed: int, n_labels: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_labels, 40, 50), bool)
    for i in range(n_labels):
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        masks[i, y : y + rng.integers(5, 25), x : x + rng.integers(5, 25)] = True
    masks[3] = masks[1] | masks[2]  # a parent class covering two children
    masks[7] = False  # a class that never occurs
    return masks


def test_label_map_and_regions_rebuild_every_class_exactly():
    images = [_overlapping(seed) for seed in range(5)]
    numbers = atoms.number_atoms(a for image in images for a in atoms.atoms_of(image))
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))  # consecutive from 1
    assert any(len(atom) > 1 for atom in numbers)  # the classes do overlap
    class_regions = atoms.regions(numbers, images[0].shape[0])
    assert class_regions[7] == []
    for image in images:
        labels = atoms.label_map(image, numbers)
        assert labels.dtype == np.uint16
        assert np.array_equal(atoms.class_masks(labels, class_regions), image)


def test_atoms_of_many_images_at_once_equal_the_union():
    images = np.stack([_overlapping(seed) for seed in range(3)])
    separate = set().union(*(atoms.atoms_of(image) for image in images))
    assert atoms.atoms_of(images) == separate


def test_numbering_does_not_depend_on_discovery_order():
    found = [atoms.atoms_of(_overlapping(seed)) for seed in range(4)]
    forward = atoms.number_atoms(a for f in found for a in f)
    backward = atoms.number_atoms(a for f in reversed(found) for a in sorted(f, reverse=True))
    assert forward == backward


def test_too_many_atoms_for_uint16_is_a_clear_error():
    many = [(i,) for i in range(atoms.MAX_ATOMS + 1)]
    with pytest.raises(ValueError, match=r"at most 65535.*--labels or --systems"):
        atoms.number_atoms(many)
    assert len(atoms.number_atoms(many[:-1])) == atoms.MAX_ATOMS


def test_an_atom_missing_from_the_numbering_is_refused():
    image = _overlapping(0)
    numbers = atoms.number_atoms(atoms.atoms_of(image))
    numbers.pop(max(numbers, key=len))
    with pytest.raises(KeyError, match="not an atom of the export"):
        atoms.label_map(image, numbers)


def test_unique_rows_equal_numpys():
    rng = np.random.default_rng(3)
    for n_bytes in (1, 8, 9, 27):
        keys = rng.integers(0, 3, (5000, n_bytes)).astype(np.uint8) * 85
        unique, inverse = atoms._unique_rows(keys)
        theirs, their_inverse = np.unique(keys, axis=0, return_inverse=True)
        assert np.array_equal(unique, theirs) and np.array_equal(inverse, their_inverse.ravel())
