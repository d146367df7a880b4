"""Quality measures shared by tests and benchmarks: the project's flicker metric (shared/NOTES.md)."""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

METRIC_SIZE = (320, 180)  # (width, height)


def flicker(frames: Iterable[np.ndarray], alphas: Iterable[np.ndarray], static_threshold: float = 2.0) -> float:
    """Mean over t of the mean |α(t) − α(t−1)| over pixels whose luma changed by < 2.

    Frames (BGR uint8) and alphas (float in [0, 1], any size) are first
    area-downscaled to 320×180.
    """
    prev_luma = prev_alpha = None
    values = []
    for frame, alpha in zip(frames, alphas):
        luma = cv2.cvtColor(cv2.resize(frame, METRIC_SIZE, interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2GRAY).astype(np.float32)
        a = cv2.resize(alpha.astype(np.float32), METRIC_SIZE, interpolation=cv2.INTER_AREA)
        if prev_luma is not None:
            static = np.abs(luma - prev_luma) < static_threshold
            if static.any():
                values.append(float(np.abs(a - prev_alpha)[static].mean()))
        prev_luma, prev_alpha = luma, a
    if not values:
        raise ValueError("flicker needs at least two frames with static pixels")
    return float(np.mean(values))
