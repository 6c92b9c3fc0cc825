"""The rga command line (flows/cli/): help everywhere, clear messages, no tracebacks."""

import subprocess
import sys

import pytest

from flows.cli import main


def _rga(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "command", [[], ["demo"], ["ingest"], ["build"], ["update"], ["log"], ["info"]]
)
def test_every_command_has_help(command):
    result = _rga(*command, "--help")
    assert result.returncode == 0
    assert "usage: rga" in result.stdout


def test_bad_arguments_get_a_message_not_a_traceback(tmp_path):
    cases = [  # usage errors: 2; bad input (a missing store): 1
        (["build"], "the following arguments are required", 2),
        (["demo", str(tmp_path), "--studies", "0"], "must be at least 1", 2),
        (["demo", str(tmp_path), "--shape", "64", "x", "64"], "is not a whole number", 2),
        (["build", str(tmp_path / "none.zarr"), str(tmp_path / "d.zarr")], "no sources store", 1),
        (["info", str(tmp_path / "none.zarr")], "no dataset store", 1),
        (["ingest", "in", str(tmp_path / "s.zarr"), "--layout", "phantom"], "takes no INPUT", 2),
        (["ingest", str(tmp_path / "s.zarr"), "--layout", "dicom"], "invalid choice", 2),
        (["build", "a", "b", "--attenuation", "log"], "invalid choice", 2),
    ]
    for args, message, code in cases:
        result = _rga(*args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stdout == "", (args, result.stdout)  # errors never go to stdout


def test_image_size_is_validated(tmp_path, capsys):
    sources = tmp_path / "s.zarr"
    sources.mkdir()
    (sources / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    code = main(["build", str(sources), str(tmp_path / "d.zarr"), "--image-size", "8"])
    assert code == 2
    assert "image size must be between 16 and 4096" in capsys.readouterr().err


def test_info_describes_a_built_store(demo_dir, capsys):
    assert main(["info", str(demo_dir / "dataset.zarr")]) == 0
    out = capsys.readouterr().out
    assert "studies: 3 committed of 3" in out
    assert "labels: 210 classes in 10 regions" in out
    assert "open_catalog(" in out
