"""Who watches the virtual camera: other processes holding its device node open (Linux, inotify).

A call app opens ``/dev/videoN`` when it shows the camera and closes it when it
stops. Counting opens and closes with inotify (as Linux-Fake-Background-Webcam
does), after counting the processes that already had it open when we started
(a scan of ``/proc/*/fd``, made again after each batch of events: identical
events are merged), tells the pipeline when nobody is watching, so it
can stop inference and send a still frame instead. Anywhere else (another OS,
a device without inotify) the count is unknown and nothing is paused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
import sys
from pathlib import Path

log = logging.getLogger(__name__)

IN_OPEN, IN_CLOSE_WRITE, IN_CLOSE_NOWRITE = 0x20, 0x08, 0x10
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


def openers(path: str | os.PathLike, exclude_pid: int | None = None) -> int:
    """How many open file descriptors of other processes point at ``path`` (from /proc)."""
    target = os.path.realpath(path)
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == exclude_pid:
            continue
        try:
            for fd in (proc / "fd").iterdir():
                try:
                    if os.readlink(fd) == target:
                        count += 1
                except OSError:
                    continue
        except OSError:  # another user's process, or it just ended
            continue
    return count


class DeviceReaders:
    """``count()``: how many other processes have the device open now; ``None`` when unknown."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._fd = -1
        self._count: int | None = None
        if not sys.platform.startswith("linux") or not os.path.exists(self.path):
            return
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.debug("inotify unavailable for %s: errno %d", self.path, ctypes.get_errno())
            return
        if libc.inotify_add_watch(fd, self.path.encode(), IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0:
            log.debug("cannot watch %s: errno %d", self.path, ctypes.get_errno())
            os.close(fd)
            return
        self._fd = fd
        self._count = openers(self.path, exclude_pid=os.getpid())

    def count(self) -> int | None:
        """Drain the pending open/close events and return the number of other openers."""
        if self._fd < 0:
            return None
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                break
            except OSError:
                return self._count
            offset, events = 0, 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                events += 1
                if mask & IN_OPEN:
                    self._count += 1
                elif mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE):
                    self._count = max(0, self._count - 1)
            if events:
                self._count = self._checked(self._count)
        return self._count

    def _checked(self, counted: int) -> int:
        """The event count set right by a scan of /proc: the kernel merges identical events still
        unread (two opens in one moment arrive as one), so counting alone could pause while an app
        watches. The scan sees every process as root, else the user's own (call apps): then it
        only ever raises the count (another user's reader counts through its events)."""
        seen = openers(self.path, exclude_pid=os.getpid())
        return seen if seen > counted or os.geteuid() == 0 else counted

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


#: Inference pauses once nobody has watched for this long (seconds). Apps listing cameras open and
#: close each one: pausing and resuming at each such probe filled the log and kept inference going.
PAUSE_AFTER_S = 2.0


class PauseGate:
    """``idle(watchers, now)``: True once nobody has watched for :data:`PAUSE_AFTER_S`; False at once
    when someone does (``now``: any clock, in seconds)."""

    def __init__(self, after_s: float = PAUSE_AFTER_S):
        self.after_s = after_s
        self._since: float | None = None  # since when nobody has watched

    def idle(self, watchers: int, now: float) -> bool:
        if watchers:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.after_s
