"""rga's own modules raise no DeprecationWarning (docs/DESIGN.md, "Supported Pythons").

pytest makes one attributed to our packages an error in every test (``pyproject.toml``); this
runs the demo, which touches ingest, build, update, evaluation and the reports, as a user would
with Python's own switch, in the client and in every worker process it starts.
"""

import subprocess
import sys


def test_the_demo_runs_under_python_W_error_DeprecationWarning(tmp_path):
    command = [sys.executable, "-W", "error::DeprecationWarning", "-m", "flows.cli", "demo"]
    command += [str(tmp_path / "demo"), "--studies", "3", "--shape", "48", "48", "64"]
    result = subprocess.run(
        [*command, "--workers", "1"], capture_output=True, text=True, check=False, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DeprecationWarning" not in result.stderr
