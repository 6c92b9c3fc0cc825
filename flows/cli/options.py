"""Argument types shared by every ``rga`` command."""

import argparse


def positive_int(text: str) -> int:
    """A whole number of at least 1, or an argparse error that says which it is not."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value
