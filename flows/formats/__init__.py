"""The formats segmentation tools train on: COCO, CheXmask CSV, PNG folders and nnU-Net v2.

Each module writes one study's files (run on a worker: ``write_study``), gives the index that
names them all (fed on the client in study order: ``index.Index``), and, where predictions come
back in that format, reads them for ``rga evaluate`` (``open_coco``, ``open_nnunet``).
``flows.export`` runs the graph.
"""
