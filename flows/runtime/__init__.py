"""Where graphs run and how a run is seen: the Dask client or local cluster (``cluster``),
progress on stderr (``progress``), failures carried back from workers (``failure``) and room in
the C allocator while a study is processed (``allocator``). Imports only dask and distributed."""
