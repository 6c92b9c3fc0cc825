"""The synthetic thorax: a CT in Hounsfield units plus a mask of every one of the 210 classes,
for the demo, the tests and the benchmarks only (real studies come in through
``flows.inputs``). It is built from analytic primitives (ellipsoids, tubes along polylines,
superelliptic cross-sections that vary with height), so its ground-truth geometry
(cardiothoracic ratio, Cobb angles) is known exactly and measurement and projection code can be
checked against it; pure numpy, no I/O, no Dask. ``make_phantom`` (``make``) is the entry point;
``geometry`` holds the ground truth, ``grid`` the coordinates, ``shapes`` the primitives,
``spine`` and ``layout`` the landmarks, ``skeleton``, ``thorax``, ``abdomen`` and ``anatomy``
each class's shape, ``masks`` the overlap and containment rules, ``ct`` the Hounsfield units,
``inputs`` the studies as ingest inputs.
"""

from flows.phantom.geometry import DEFAULT_FOV_MM, PhantomGeometry
from flows.phantom.grid import voxel_spacing
from flows.phantom.inputs import PhantomInput, phantom_inputs
from flows.phantom.make import Phantom, make_phantom

__all__ = [
    "DEFAULT_FOV_MM",
    "Phantom",
    "PhantomGeometry",
    "PhantomInput",
    "make_phantom",
    "phantom_inputs",
    "voxel_spacing",
]
