"""Progress of a long run: studies done of total, rate, ETA and failures, printed to stderr.

Fed by the per-batch callbacks of ``ingest`` and ``update`` (``on_batch``, ``on_failure``),
which run in the client process as batches complete, so it reports the same on a laptop and
against a remote scheduler (``dask.diagnostics.ProgressBar`` is silent under distributed).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

DEFAULT_INTERVAL = 5.0  # seconds between lines in a log file; a terminal line is rewritten


class Progress:
    """Prints ``what: done/total studies (pct), rate, ETA, failures`` lines as batches complete.

    Lines come at most every ``interval`` seconds (the first and last batch always show). On a
    terminal one line is rewritten in place; elsewhere (logs, pipes) each is a plain text line
    with no control codes. ``quiet`` prints only the summary from ``finish``.
    """

    def __init__(
        self,
        what: str,
        *,
        quiet: bool = False,
        interval: float = DEFAULT_INTERVAL,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.quiet = quiet
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.total = 0
        self.failures = 0
        self._last_shown: float | None = None
        self._line_open = False  # a terminal line is waiting to be rewritten or ended

    def __call__(self, done: int, total: int) -> None:
        """The ``on_batch`` callback: ``done`` of ``total`` studies are finished."""
        self.done, self.total = done, total
        now = self.clock()
        due = self._last_shown is None or now - self._last_shown >= self.interval
        if self.quiet or not (due or done >= total):
            return
        self._last_shown = now
        self._show(self.line(now))

    def failed(self, study_id: str, message: str) -> None:
        """The ``on_failure`` callback: one study failed (its message is in the summary)."""
        self.failures += 1

    def finish(self) -> None:
        """End the display with one summary line (printed under ``quiet`` too)."""
        elapsed = self.clock() - self.started
        failed = f", {self.failures} failed" if self.failures else ""
        rate = f" ({_rate(self.done, elapsed)})" if self.done and elapsed > 0 else ""
        self._show(
            f"{self.what}: {self.done}/{self.total} studies in {elapsed:.1f} s{rate}{failed}"
        )
        self._end_line()

    def line(self, now: float) -> str:
        """The progress line at time ``now``: counts, rate, estimated time left, failures."""
        elapsed = now - self.started
        parts = [f"{self.what}: {self.done}/{self.total} studies ({_percent(self)})"]
        if self.done and elapsed > 0:
            left = (self.total - self.done) * elapsed / self.done
            parts += [_rate(self.done, elapsed), f"ETA {_duration(left)}"]
        parts.append(f"{self.failures} failed")
        return ", ".join(parts)

    def _show(self, text: str) -> None:
        if self._is_terminal():
            # \r and erase-to-end-of-line rewrite the line in place; only ever on a terminal.
            self.stream.write(f"\r{text}\x1b[K")
            self._line_open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False

    def _is_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())


def _percent(progress: Progress) -> str:
    return f"{100 * progress.done // progress.total}%" if progress.total else "100%"


def _rate(done: int, seconds: float) -> str:
    per_second = done / seconds
    if per_second >= 1:
        return f"{per_second:.1f} studies/s"
    return f"{60 * per_second:.1f} studies/min"


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h07m``: short enough for one line."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
