"""The formats segmentation tools train on: COCO, CheXmask CSV, PNG folders and nnU-Net v2.

Each module writes one study's files (run on a worker: ``write_study``), writes the index that
names them all once every study is done (on the client: ``finish``), and, where predictions come
back in that format, reads them for ``rga evaluate``. ``flows.export`` runs the graph.
"""
