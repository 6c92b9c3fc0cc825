"""The ``rga`` command line: one module per command group, shared options in ``options``."""

from flows.cli.main import main

__all__ = ["main"]
