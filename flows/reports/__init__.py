"""What people read: report tables (terminal, CSV, Markdown, JSON), PNG figures and study
previews, rendered from what the graphs computed (``flows.maths`` values and in-memory
arrays). Reports open no store and schedule nothing: they import numpy, matplotlib, Pillow,
``flows.maths``, ``catalog.taxonomy`` and each other (docs/DESIGN.md, "Layers"); only
``preview`` takes an ``xarray.Dataset``, to read one study's chunks. Nothing is exported here;
callers import the module they need (``from flows.reports.tables import to_text``).
"""
