"""Named pipes (``mkfifo``) as a video source: wait for a writer, open without blocking Ctrl-C."""

from __future__ import annotations

import logging
import os
import select
import stat
import sys
import threading

import cv2

from .errors import SourceError

log = logging.getLogger(__name__)


def is_pipe(path: str) -> bool:
    """A named pipe (``mkfifo``) on Linux, read as it comes by :func:`pipe_capture`; elsewhere, and
    for anything else, False (OpenCV opens it as it is)."""
    try:
        return sys.platform.startswith("linux") and stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def pipe_capture(path: str) -> cv2.VideoCapture:
    """OpenCV's capture of a named pipe, opened so that Ctrl-C works throughout: OpenCV's open
    blocks, deaf to it, until something writes into the pipe (and again if the writer has gone
    by then), and then while it reads the start of the video. So: wait here, saying so, until the
    pipe holds data; then OpenCV opens it on a thread of its own, waited for here, while a writer
    of ours keeps its open from blocking; ours is closed as soon as OpenCV has the pipe, so that
    a writer that stops early ends the video instead of leaving OpenCV waiting for more."""
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (does not wait for a writer; holds what is written)
    try:
        poller = select.poll()
        poller.register(reader, select.POLLIN)
        told = False
        while not (events := poller.poll(250)):
            if not told:
                log.info("waiting for something to write into the pipe %s (Ctrl-C to stop)", path)
                told = True
        if not events[0][1] & select.POLLIN:  # a writer came and went, writing nothing
            raise SourceError(f"the pipe {path} was closed without anything written into it")
        return _opened_on_a_thread(path, reader)
    finally:
        os.close(reader)


def _opened_on_a_thread(path: str, reader: int) -> cv2.VideoCapture:
    fifo = os.fstat(reader)
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # (does not wait: a reader is there, ours)
    ours = {reader, writer}
    made: list[cv2.VideoCapture] = []
    # (FFmpeg alone: trying other backends after it opened the pipe again, and blocked, the writer gone)
    opener = threading.Thread(target=lambda: made.append(cv2.VideoCapture(path, cv2.CAP_FFMPEG)),
                              name="pipe-open", daemon=True)
    try:
        opener.start()
        while opener.is_alive():
            opener.join(0.05)  # (Ctrl-C reaches this thread; the opener, blocked in OpenCV, is left)
            if writer is not None and _open_elsewhere(fifo, ours):
                os.close(writer)
                ours.discard(writer)
                writer = None
    finally:
        if writer is not None:
            os.close(writer)
    if not made:
        raise SourceError(f"cannot open the pipe {path}")
    return made[0]


def _open_elsewhere(fifo: os.stat_result, ours: set[int]) -> bool:
    """Has this process opened the pipe ``fifo`` on a descriptor not in ``ours`` (OpenCV's)?"""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd in ours:
            continue
        try:
            st = os.fstat(fd)
        except OSError:  # (the listing's own descriptor, closed by now)
            continue
        if (st.st_dev, st.st_ino) == (fifo.st_dev, fifo.st_ino):
            return True
    return False
