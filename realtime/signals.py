"""Signals and the desktop: SIGTERM/SIGHUP stop a run, a Ctrl-C while it stops waits, is there a display.

Signal handlers can only be installed from the main thread; elsewhere these do nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger(__name__)


def install_signal_handlers(pipeline) -> Callable[[], None]:
    """SIGTERM, SIGHUP (the terminal closed) and SIGQUIT (Ctrl-\\, which the key mode leaves on)
    stop ``pipeline`` cleanly: the recording finished, the terminal restored; returns a function
    that restores the previous handlers."""
    previous = {}

    def handler(signum, frame):
        pipeline.stop(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None), getattr(signal, "SIGQUIT", None)):
        if sig is not None and threading.current_thread() is threading.main_thread():
            previous[sig] = signal.signal(sig, handler)

    def restore():
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@contextmanager
def ctrl_c_waits(quiet: bool = False) -> Iterator[None]:
    """While a run stops (threads joined, the recording finalised, the terminal restored), a
    further Ctrl-C is noted, not raised: a KeyboardInterrupt in the middle of that would leave the
    recording without its index (unplayable) and the terminal without echo. Stopping is bounded
    (a few seconds at most), so nobody waits long. ``quiet``: nothing is said (all is closed already)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    said = []

    def handler(signum, frame):
        if not said and not quiet:  # (once: Ctrl-C held down or pressed again and again)
            said.append(True)
            log.warning("stopping: finishing the recording and closing the outputs (a few seconds at most)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
