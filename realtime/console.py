"""The run's own console output (stats, banner, saved paths): a closed terminal or pipe never ends the run.

``python live.py --stats 2>&1 | head`` or a closed terminal window makes every
later write to stderr fail (EPIPE, EIO). The first failure points that stream's
file descriptor at ``/dev/null``, so the run goes on (the recording, the virtual
camera) and the interpreter's exit flush does not fail either.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO


def say(text: str, stream: TextIO | None = None) -> None:
    """Print ``text`` and a newline to ``stream`` (stderr by default), flushed; mute it if it is gone."""
    stream = sys.stderr if stream is None else stream
    if stream is None:  # (pythonw: no console at all)
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError:
        mute(stream)


def mute(stream: TextIO) -> None:
    """Point a stream whose reader went away at ``/dev/null`` (what it still holds is dropped)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (a test's StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    try:  # the buffered text that failed is still pending: drop it into /dev/null now
        stream.flush()
    except OSError:
        pass


class ConsoleHandler(logging.StreamHandler):
    """A log handler that mutes its stream when the terminal or pipe is gone, instead of
    printing "--- Logging error ---" with a traceback for every later message."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            mute(self.stream)
        else:
            super().handleError(record)
