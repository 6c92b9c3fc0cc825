"""A study's failure as it travels from the worker that hit it back to the client.

A worker's own log is not the user's terminal (a local cluster's workers are other processes, a
remote cluster's other machines), so the traceback comes back with the sentence, and the client
logs it at debug level: ``-v`` shows it, and without ``-v`` only the sentence is printed.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    """What went wrong with one study: the sentence users see and the worker's traceback."""

    message: str
    details: str

    def __str__(self) -> str:
        return self.message

    def redacted(self, clean: Callable[[str], str]) -> Failure:
        """The same failure with ``clean`` applied to both texts (to keep secrets out)."""
        return Failure(clean(self.message), clean(self.details))


def capture(error: BaseException, message: str | None = None) -> Failure:
    """``error`` (being handled) as a Failure; ``message`` defaults to "Type: text"."""
    text = message if message is not None else f"{type(error).__name__}: {error}"
    return Failure(text, "".join(traceback.format_exception(error)))


def log_details(log: logging.Logger, step: str, study_id: str, failure: Failure) -> None:
    """Log the worker's traceback of ``study_id``'s failure at debug level (shown with -v)."""
    log.debug("%s of study %s failed on its worker:\n%s", step, study_id, failure.details.rstrip())
