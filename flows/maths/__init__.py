"""The mathematics of the project, pure numpy and scipy: the X-ray projection, box masks, the
segmentation metrics, the clinical measurements and their grades, the bootstrap, grade
agreement, paired model statistics, class-balanced means and mask footprints. Nothing here
reads or writes a store or builds a graph: modules import only numpy, scipy, the stdlib,
``catalog.taxonomy``, ``flows.codecs`` (compiled kernels) and each other, and render no table
(docs/DESIGN.md, "Layers"). Nothing is exported here; callers import the module they need
(``from flows.maths.metrics import pair_metrics``).
"""
