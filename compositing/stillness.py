"""Is a frame the same scene as an earlier one, up to sensor noise? (The compositor's reuse test.)

A still scene reuses work that depends on the frame only through what the
scene looks like (the blurred room, an edge-refined alpha): the frames are
compared as bilinear thumbnails, which average 2x2 pixels, so sensor noise
(σ ≈ 2 grey levels) and MJPEG ringing stay far below the threshold while
anything that really changes (a lamp, a door, a hand) does not.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Same scene while at most SHARE of the thumbnail's values moved by more than LEVELS grey levels.
LEVELS, SHARE = 8, 0.002


def thumbnail(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A cheap bilinear thumbnail of a BGR uint8 frame (0.2 ms at 720p)."""
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def same_scene(thumb: np.ndarray, earlier: np.ndarray | None) -> bool:
    """True when two thumbnails of one size differ by no more than sensor noise."""
    return (earlier is not None and earlier.shape == thumb.shape
            and np.count_nonzero(cv2.absdiff(thumb, earlier) > LEVELS) <= SHARE * thumb.size)
