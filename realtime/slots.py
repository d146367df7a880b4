"""Thread hand-offs that never queue: a "latest value" slot.

A producer overwrites the slot; each consumer asks for anything newer than the
last sequence number it saw. A slow consumer therefore skips stale values
instead of building a backlog, so latency cannot grow.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class SlotClosed(Exception):
    """The producer finished and nothing newer will come."""


class LatestSlot(Generic[T]):
    """``lossless=True`` turns the slot into a one-deep bounded queue: ``put``
    waits until the previous value was read (offline processing of a file,
    where every frame must be kept and nothing is live)."""

    def __init__(self, lossless: bool = False) -> None:
        self.lossless = lossless
        self._cond = threading.Condition()
        self._item: T | None = None
        self._seq = 0
        self._closed = False
        self._read_seq = 0
        self._taken_seq = 0  # for take(): the newest value some consumer has claimed

    def put(self, item: T) -> None:
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: self._read_seq >= self._seq or self._closed)
            self._item = item
            self._seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def latest(self) -> tuple[int, T | None]:
        with self._cond:
            return self._seq, self._item

    def take(self, timeout: float | None = None) -> tuple[int, T] | None:
        """Claim the newest value no other ``take`` claimed (several workers share a slot).

        ``None`` on timeout; :class:`SlotClosed` once closed with nothing unclaimed.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > self._taken_seq or self._closed, timeout):
                return None
            if self._seq > self._taken_seq:
                self._taken_seq = self._read_seq = max(self._read_seq, self._seq)
                self._cond.notify_all()
                return self._seq, self._item  # type: ignore[return-value]
            raise SlotClosed()

    def mark_taken(self, seq: int) -> None:
        """Treat values up to ``seq`` as claimed (the caller handled them itself)."""
        with self._cond:
            self._taken_seq = max(self._taken_seq, seq)

    def get_newer(self, seen_seq: int, timeout: float | None = None) -> tuple[int, T] | None:
        """Wait for a value newer than ``seen_seq``; ``None`` on timeout.

        Raises :class:`SlotClosed` once the slot is closed and holds nothing newer.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > seen_seq or self._closed, timeout):
                return None
            if self._seq > seen_seq:
                self._read_seq = max(self._read_seq, self._seq)
                self._cond.notify_all()  # a lossless producer may be waiting for this read
                return self._seq, self._item  # type: ignore[return-value]
            raise SlotClosed()
