"""Run `rga update` on a SLURM cluster through dask-jobqueue (one Dask worker per SLURM job).

    pip install radgenome-anatomy dask-jobqueue
    python deploy/hpc/slurm_update.py SOURCES DEST --jobs 8 --queue normal --account proj123

Run it on a login node (or inside a small `sbatch` allocation, see rga-update.sbatch): it
submits worker jobs, points `rga update` at their scheduler with `--scheduler`, and cancels the
jobs when the update ends. The scheduler listens on --interface (the cluster network) because
the workers are on other nodes; the dashboard stays on loopback (reach it with `ssh -L`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def rga_argv(options: argparse.Namespace, scheduler: str) -> list[str]:
    """The `rga update` command line this recipe runs against ``scheduler``."""
    extra = ["--image-size", str(options.image_size)] if options.image_size else []
    return ["update", options.sources, options.dest, "--scheduler", scheduler, "--wait", *extra]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The recipe's own options: what to update, and how to size the SLURM workers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", help="sources store (path or URL)")
    parser.add_argument("dest", help="dataset store (path or URL)")
    parser.add_argument("--jobs", type=int, default=8, help="SLURM jobs, one worker each")
    parser.add_argument("--queue", help="SLURM partition")
    parser.add_argument("--account", help="SLURM account")
    parser.add_argument("--walltime", default="02:00:00", help="per worker job")
    parser.add_argument("--memory", default="4GiB", help="per worker (see README: sizing)")
    parser.add_argument("--interface", default="ib0", help="network interface of the nodes")
    parser.add_argument("--local-directory", default="$TMPDIR", help="worker spill folder")
    parser.add_argument("--image-size", type=int, help="passed to rga --image-size")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the SLURM workers, run the update on them, cancel them."""
    from dask_jobqueue import SLURMCluster  # only needed where the recipe runs

    from flows.cli import main as rga

    options = parse(argv)
    with SLURMCluster(
        queue=options.queue,
        account=options.account,
        cores=1,
        processes=1,
        memory=options.memory,
        walltime=options.walltime,
        interface=options.interface,
        local_directory=options.local_directory,
        scheduler_options={"dashboard_address": "127.0.0.1:8787"},
    ) as cluster:
        cluster.scale(jobs=options.jobs)
        print(f"workers: {options.jobs} SLURM jobs; dashboard {cluster.dashboard_link}")
        return rga(rga_argv(options, cluster.scheduler_address))


if __name__ == "__main__":
    sys.exit(main())
