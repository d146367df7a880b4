"""Optical flow made on the capture thread, ahead of the render loop that applies it."""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from matting.motion import MotionCompensator

from .slots import LatestSlot
from .stats import RunStats

log = logging.getLogger(__name__)


class FlowAhead:
    """The capture thread's work on each new frame in async mode with motion compensation: the
    flow from the newest matte's frame to this frame (:meth:`MotionCompensator.prepare`), made
    before the frame is handed on, so the render loop's warp only applies it (the flow is about
    two thirds of the warp's time; with another matte by then, the render loop makes its own).
    Nothing while ``idle()`` (inference rests: nobody watches, or the user paused; the last frame
    repeats). A failure here is left to the render loop's own warp to report: the capture goes on."""

    def __init__(self, motion: MotionCompensator, mattes: LatestSlot, stats: RunStats, idle: Callable[[], bool]):
        self.motion, self.mattes, self.stats, self.idle = motion, mattes, stats, idle

    def __call__(self, image: np.ndarray) -> None:
        _, result = self.mattes.latest()
        if result is None or self.idle():
            return
        start = time.perf_counter()
        try:
            made = self.motion.prepare(result.packet.image, image)
        except Exception:
            log.debug("flow ahead of the render loop failed: the render loop makes it", exc_info=True)
            return
        if made:
            self.stats.stage("flow", time.perf_counter() - start)
