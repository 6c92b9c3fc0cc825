"""deploy/: every manifest parses, has what the dask-kubernetes operator needs, runs a valid rga."""

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from dask.utils import parse_bytes
from distributed.cli.dask_scheduler import main as dask_scheduler
from distributed.cli.dask_worker import main as dask_worker

from flows.cli.main import _parser

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
API = "kubernetes.dask.org/v1"
SECRET = "rga-s3"


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _cluster_spec(doc: dict) -> dict:
    """The DaskCluster spec of a DaskCluster, or the one a DaskJob starts."""
    return doc["spec"] if doc["kind"] == "DaskCluster" else doc["spec"]["cluster"]["spec"]


def _k8s_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (6Gi, 512Mi) in bytes."""
    number, unit = re.fullmatch(r"(\d+)([KMGT]i)", quantity).groups()
    return int(number) * 1024 ** ("KMGT".index(unit[0]) + 1)


def _uses_secret(container: dict) -> bool:
    refs = [e.get("secretRef", {}).get("name") for e in container.get("envFrom", [])]
    return SECRET in refs


def test_there_are_a_cluster_and_a_job_manifest():
    kinds = sorted(doc["kind"] for path in MANIFESTS for doc in _documents(path))
    assert kinds == ["DaskCluster", "DaskJob"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_have_the_fields_the_operator_requires(path):
    for doc in _documents(path):
        assert doc["apiVersion"] == API and doc["kind"] in ("DaskCluster", "DaskJob")
        name = doc["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)  # a DNS-1123 label
        spec = _cluster_spec(doc)
        assert isinstance(spec["worker"]["replicas"], int) and spec["worker"]["replicas"] >= 1
        for role in ("worker", "scheduler"):
            for container in spec[role]["spec"]["containers"]:
                assert container["name"] and container["image"]
        service = spec["scheduler"]["service"]
        assert service["selector"] == {
            "dask.org/cluster-name": name,
            "dask.org/component": "scheduler",
        }
        ports = {p["name"]: p["port"] for p in service["ports"]}
        assert ports["tcp-comm"] == 8786
        scheduler = spec["scheduler"]["spec"]["containers"][0]
        named = {p["name"]: p["containerPort"] for p in scheduler["ports"]}
        assert {p["targetPort"] for p in service["ports"]} <= set(named)
        assert service.get("type", "ClusterIP") == "ClusterIP"  # not exposed outside


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_dask_commands_are_valid_and_worker_memory_matches_its_limit(path):
    for doc in _documents(path):
        spec = _cluster_spec(doc)
        scheduler = spec["scheduler"]["spec"]["containers"][0]
        assert scheduler["command"] == ["dask"] and scheduler["args"][0] == "scheduler"
        dask_scheduler.make_context("dask scheduler", scheduler["args"][1:])
        for worker in spec["worker"]["spec"]["containers"]:
            assert worker["command"] == ["dask"] and worker["args"][0] == "worker"
            options = dask_worker.make_context("dask worker", worker["args"][1:]).params
            assert options["scheduler"] is None  # the operator gives the address by env
            assert options["nthreads"] == 1
            # Dask spills and pauses below its limit; the pod limit must not kill it first.
            limit = _k8s_bytes(worker["resources"]["limits"]["memory"])
            assert parse_bytes(options["memory_limit"]) == limit
            assert (
                worker["resources"]["requests"]["memory"] == worker["resources"]["limits"]["memory"]
            )
            assert _uses_secret(worker)  # workers read and write the stores


def test_the_job_runs_a_valid_rga_update_between_s3_stores_with_credentials_from_a_secret():
    (job,) = [d for p in MANIFESTS for d in _documents(p) if d["kind"] == "DaskJob"]
    (container,) = job["spec"]["job"]["spec"]["containers"]
    assert container["command"] == ["rga"]
    args = _parser().parse_args(container["args"])
    assert args.command == "update"
    assert args.sources.startswith("s3://") and args.dest.startswith("s3://")
    assert args.scheduler is None  # DASK_SCHEDULER_ADDRESS, set by the operator, is used
    assert _uses_secret(container)
    assert not args.storage_option  # no credentials on the command line


def test_no_manifest_or_recipe_carries_a_credential():
    texts = [p.read_text() for p in DEPLOY.rglob("*") if p.is_file()]
    for text in texts:
        assert not re.search(r"AKIA[0-9A-Z]{16}", text)
        # Only placeholders (KEY=...) in the instructions; never a value.
        assert not re.search(r"(secret|key)\w*=(?!\.\.\.)\S", text, re.IGNORECASE)


def test_the_image_installs_the_package_and_runs_rga():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["rga"]' in dockerfile
    assert re.search(r"pip install \.", dockerfile)
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {p.removesuffix("*") for p in setuptools["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) ", dockerfile, re.MULTILINE))
    assert packages <= copied  # every package of the wheel (and its subpackages) is in the image
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        assert all((ROOT / name).exists() for name in source.split())


def _slurm_recipe():
    spec = importlib.util.spec_from_file_location(
        "slurm_update", DEPLOY / "hpc" / "slurm_update.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # dask_jobqueue is imported only when the recipe runs
    return module


def test_the_slurm_recipe_runs_a_valid_rga_update():
    recipe = _slurm_recipe()
    options = recipe.parse(["s3://b/sources.zarr", "s3://b/dataset.zarr", "--image-size", "256"])
    argv = recipe.rga_argv(options, "tcp://10.0.0.5:8786")
    args = _parser().parse_args(argv)
    assert (args.command, args.sources, args.dest) == ("update", *argv[1:3])
    assert args.scheduler == "tcp://10.0.0.5:8786" and args.image_size == 256
    sbatch = (DEPLOY / "hpc" / "rga-update.sbatch").read_text()
    assert "deploy/hpc/slurm_update.py" in sbatch and sbatch.startswith("#!/bin/bash")
