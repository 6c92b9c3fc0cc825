"""Decoders and compiled numpy kernels: how mask files' bytes become planes, and the fast loops
over them. ``plane_reader`` decodes ``.nii``/``.nii.gz`` bytes into a stream that skips all-zero
planes (in C, ``_sparse_gzip.c``, where the extension is built; zlib-ng otherwise) and finds the
rows and columns around a plane's set values (``set_bounds``). The package is a leaf of the
layers (docs/DESIGN.md): it imports only numpy, zlib-ng and its own extension, never the rest of
``flows``, ``storage`` or ``catalog``. Exported here is what the other packages use.
"""

from flows.codecs.plane_reader import SparseGzipError, open_dense, open_planes, set_bounds

__all__ = ["SparseGzipError", "open_dense", "open_planes", "set_bounds"]
