"""Quality measures shared by tests and benchmarks: the project's flicker metric (shared/NOTES.md)."""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

METRIC_SIZE = (320, 180)  # (width, height)


class FlickerMeter:
    """The flicker metric over a stream, one frame at a time (nothing kept but the previous frame).

    ``push(frame, alpha)`` in display order; :meth:`value` is the mean over t of the mean
    |α(t) − α(t−1)| over pixels whose luma changed by < ``static_threshold``. Frames (BGR uint8)
    and alphas (float in [0, 1], any size) are first area-downscaled to 320×180."""

    def __init__(self, static_threshold: float = 2.0):
        self.static_threshold = static_threshold
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (luma, alpha) at metric size
        self._values: list[float] = []

    def push(self, frame: np.ndarray, alpha: np.ndarray) -> None:
        luma = cv2.cvtColor(cv2.resize(frame, METRIC_SIZE, interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2GRAY).astype(np.float32)
        a = cv2.resize(alpha.astype(np.float32), METRIC_SIZE, interpolation=cv2.INTER_AREA)
        if self._previous is not None:
            prev_luma, prev_alpha = self._previous
            static = np.abs(luma - prev_luma) < self.static_threshold
            if static.any():
                self._values.append(float(np.abs(a - prev_alpha)[static].mean()))
        self._previous = (luma, a)

    def value(self) -> float:
        if not self._values:
            raise ValueError("flicker needs at least two frames with static pixels")
        return float(np.mean(self._values))


def flicker(frames: Iterable[np.ndarray], alphas: Iterable[np.ndarray], static_threshold: float = 2.0) -> float:
    """Mean over t of the mean |α(t) − α(t−1)| over pixels whose luma changed by < 2
    (:class:`FlickerMeter` over the pairs)."""
    meter = FlickerMeter(static_threshold)
    for frame, alpha in zip(frames, alphas):
        meter.push(frame, alpha)
    return meter.value()
