"""Run ``rga update`` in this process and freeze it (SIGSTOP) right after its first commit.

Used by tests/flows/test_concurrency.py: ``python pausing_update.py SOURCES DEST [rga flags...]``.
The test takes the store's lease over while this process is frozen, then resumes it (SIGCONT),
as a laptop that slept or a VM that was paused mid-update would resume.
"""

import os
import signal
import sys

# Run as a script, this folder comes first on sys.path, and its mirrored tests/flows/ (no
# __init__.py) would shadow the installed flows package as a namespace package.
sys.path.remove(os.path.dirname(os.path.abspath(__file__)))

import storage.dataset
from flows.cli import main


def _freeze_after_first_commit() -> None:
    original = storage.dataset.set_committed
    commits = [0]

    def committing_then_freezing(ref, flags):
        original(ref, flags)
        commits[0] += 1
        if commits[0] == 1:
            print("committed once", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)

    storage.dataset.set_committed = committing_then_freezing


if __name__ == "__main__":
    sources, dest, *flags = sys.argv[1:]
    _freeze_after_first_commit()
    sys.exit(main(["update", sources, dest, "--scheduler", "synchronous", *flags]))
