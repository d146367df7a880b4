"""Is a frame the same scene as an earlier one, up to sensor noise? (The compositor's reuse test.)

A still scene reuses work that depends on the frame only through what the
scene looks like (the blurred room, an edge-refined alpha): the frames are
compared as area-averaged thumbnails, so sensor noise (σ ≈ 2 grey levels) and
MJPEG ringing stay far below the threshold while anything that really changes
(a lamp, a door, a hand) does not.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Same scene while at most SHARE of the thumbnail's values moved by more than LEVELS grey levels.
LEVELS, SHARE = 8, 0.002


def thumbnail(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average ``image`` (any dtype and channels) down to ``width`` x ``height``: halvings
    while they fit exactly (OpenCV's fast path, 10x a general area resize at 720p), then one
    area resize for the rest (0.3 ms from 720p to 160x90 here)."""
    while (image.shape[0] % 2 == 0 and image.shape[1] % 2 == 0
           and image.shape[0] >= 2 * height and image.shape[1] >= 2 * width):
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return image


def same_scene(thumb: np.ndarray, earlier: np.ndarray | None) -> bool:
    """True when two thumbnails of one size differ by no more than sensor noise."""
    return (earlier is not None and earlier.shape == thumb.shape
            and np.count_nonzero(cv2.absdiff(thumb, earlier) > LEVELS) <= SHARE * thumb.size)
