"""The progress display: counts, rate, ETA and failures; plain lines off a terminal; --quiet."""

import io
import re
from pathlib import Path

from niftis import generic_study

from flows.cli import main
from flows.runtime.progress import Progress


class Clock:
    """A clock the test advances by hand, so no assertion depends on real time."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _progress(stream: io.StringIO, **options) -> tuple[Progress, Clock]:
    clock = Clock()
    return Progress("build", stream=stream, clock=clock, **options), clock


def test_lines_report_done_total_rate_eta_and_failures():
    stream = io.StringIO()
    progress, clock = _progress(stream, interval=0)
    clock.now += 10
    progress(32, 128)
    progress.failed("s007", "truncated CT")
    clock.now += 10
    progress(64, 128)
    assert stream.getvalue().splitlines() == [
        "build: 32/128 studies (25%), 3.2 studies/s, ETA 30s, 0 failed",
        "build: 64/128 studies (50%), 3.2 studies/s, ETA 20s, 1 failed",
    ]


def test_slow_runs_show_minutes_and_per_minute_rates():
    stream = io.StringIO()
    progress, clock = _progress(stream, interval=0)
    clock.now += 600
    progress(5, 1000)
    assert (
        stream.getvalue() == "build: 5/1000 studies (0%), 0.5 studies/min, ETA 33h10m, 0 failed\n"
    )


def test_lines_come_at_most_every_interval_but_the_first_and_last_always_show():
    stream = io.StringIO()
    progress, clock = _progress(stream, interval=5)
    for done in range(1, 11):
        clock.now += 1
        progress(done, 10)
    shown = [int(re.match(r"build: (\d+)/10", line)[1]) for line in stream.getvalue().splitlines()]
    assert shown == [1, 6, 10]


def test_off_a_terminal_there_are_no_control_codes_and_on_one_the_line_is_rewritten():
    plain, terminal = io.StringIO(), Terminal()
    for stream in (plain, terminal):
        progress, clock = _progress(stream, interval=0)
        for done in (1, 2):
            clock.now += 1
            progress(done, 2)
        progress.finish()
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()
    assert len(plain.getvalue().splitlines()) == 3
    assert terminal.getvalue().count("\r") == 3 and terminal.getvalue().endswith("\n")
    assert terminal.getvalue().count("\n") == 1  # one line, rewritten, ended by the summary


def test_quiet_prints_only_the_summary():
    stream = io.StringIO()
    progress, clock = _progress(stream, quiet=True, interval=0)
    clock.now += 4
    progress(8, 8)
    progress.failed("s1", "bad")
    progress.finish()
    assert stream.getvalue() == "build: 8/8 studies in 4.0 s (2.0 studies/s), 1 failed\n"


def _inputs(root: Path) -> Path:
    """Two real generic studies, one of them with a truncated (unreadable) CT."""
    generic_study(root, "good")
    bad = generic_study(root, "bad") / "ct.nii.gz"
    bad.write_bytes(bad.read_bytes()[:100])
    return root


def test_the_cli_reports_progress_and_failures_on_stderr(tmp_path, capsys):
    inputs = _inputs(tmp_path / "in")
    args = ["ingest", str(inputs), str(tmp_path / "s.zarr"), "--layout", "generic"]
    assert main([*args, "--scheduler", "synchronous"]) == 1
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.startswith("ingest: ")]
    assert re.fullmatch(r"ingest: 2/2 studies \(100%\), .* studies/\w+, ETA 0s, 1 failed", err[0])
    assert re.fullmatch(r"ingest: 2/2 studies in \d+\.\d s \(.*\), 1 failed", err[1])
    assert "Ingesting 2 studies (generic layout)" in captured.err
    assert "FAILED bad" in captured.err and "FAILED" not in captured.out


def test_the_cli_quiet_flag_leaves_only_the_summary(tmp_path, capsys):
    inputs = _inputs(tmp_path / "in")
    args = ["ingest", str(inputs), str(tmp_path / "s.zarr"), "--layout", "generic"]
    assert main([*args, "--scheduler", "synchronous", "--quiet"]) == 1
    captured = capsys.readouterr()
    summary = ("  FAILED ", "Report: ")  # the failures of the summary, not progress
    progress = [line for line in captured.err.splitlines() if not line.startswith(summary)]
    assert [line.split(" in ")[0] for line in progress] == ["ingest: 2/2 studies"]
    assert "Ingested 1 studies" in captured.out and "FAILED bad" in captured.err
    assert "FAILED" not in captured.out
