"""Run ``rga update`` in this process and SIGKILL it at the N-th write to the dataset store.

Used by tests/flows/test_crash.py: ``python crashing_update.py N SOURCES DEST [rga flags...]``.
N = 0 never kills and prints the number of writes made, so tests can spread kill points.
"""

import os
import signal
import sys

# Run as a script, this folder comes first on sys.path, and its mirrored tests/flows/ (no
# __init__.py) would shadow the installed flows package as a namespace package.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))

import zarr.storage

from flows.cli import main


def _install(kill_at: int, dest: str) -> list[int]:
    count = [0]
    original = zarr.storage.LocalStore.set

    async def counting_set(self, key, value):
        if str(self.root).startswith(dest):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # a real crash: no cleanup of any kind
        return await original(self, key, value)

    zarr.storage.LocalStore.set = counting_set
    return count


if __name__ == "__main__":
    kill_at, sources, dest, *flags = sys.argv[1:]
    writes = _install(int(kill_at), os.path.abspath(dest))
    code = main(["update", sources, dest, "--scheduler", "synchronous", *flags])
    print(f"writes={writes[0]}")
    sys.exit(code)
