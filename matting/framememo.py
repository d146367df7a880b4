"""Values made from a live frame, kept while that frame lives and shared between threads.

A frame (a numpy array never changed once captured) goes through several
threads a few milliseconds apart: the inference thread, the smoother, the
render loop. What one of them derives from it (area halvings on the host; the
frame's copy on the GPU and its gray motion guide) the others can take from
a :class:`FrameMemo` instead of making it again. An entry lives as long as its
frame and at most the newest ``size`` frames are held.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from typing import Callable, TypeVar

import numpy as np

V = TypeVar("V")


class FrameMemo:
    """``entry(frame, make)``: the value memoised for ``frame`` (``make()`` the first time);
    ``get(frame)``: that value or ``None``, never making one. Thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[int, tuple[weakref.ref, object]] = OrderedDict()
        self.lock = threading.Lock()  # guards entries, and callers' changes to a value

    def entry(self, frame: np.ndarray, make: Callable[[], V]) -> V:
        key = id(frame)
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry[0]() is not frame:  # new (or, defensively, an old frame's id reused)
                # When the frame dies its entry goes with it (no id reuse can come first). The
                # callback is C (a bound OrderedDict.pop, the weakref as its ignored default), not
                # Python code: a Python callback running in the render loop could swallow a Ctrl-C
                # (exceptions in weakref callbacks are ignored) and keep the run going.
                entry = self.entries[key] = (weakref.ref(frame, functools.partial(self.entries.pop, key)), make())
                self.entries.move_to_end(key)
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
            return entry[1]

    def get(self, frame: np.ndarray):
        with self.lock:
            entry = self.entries.get(id(frame))
            return entry[1] if entry is not None and entry[0]() is frame else None


#: What the torch engine made of a frame on its device, for the device smoother and compositor:
#: a dict with "image" (the frame, H×W×3 uint8 BGR on the device) and ("guide", h, w) (the gray
#: motion guide at alpha size, float32 whole grey levels). Only the newest few frames.
device_frames = FrameMemo(4)
