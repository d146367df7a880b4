"""A frame's preparation on the engine's torch device: upload, OpenCV's resize, the gray motion guide.

On a GPU the CPU side of a frame cost about as much as the model itself (on
an H200 with a 1080p frame: OpenCV's area resize to MODNet's size 4.9 ms, the
smoother with its host gray guide 3.9 ms, the model 15.7 ms eager or 4.4 ms
from a CUDA graph). Here the frame goes up once as it is (uint8) and is resized
there by two small matrix products whose weights are OpenCV's: area
coverage when shrinking (``INTER_AREA``), half-pixel bilinear when growing
(``INTER_LINEAR``), the choice :func:`matting.engine.resize_for_inference`
makes (where an axis would go the other way, OpenCV's own resize runs and its
result goes up). Results are rounded to whole grey levels as OpenCV's uint8
output is (a test holds them within one level of OpenCV's). The frame on the device and
its guide are left in :data:`matting.framememo.device_frames` for the device
smoother and compositor, which would otherwise upload the frame again.
"""

from __future__ import annotations

import threading

import numpy as np

from .engine import resize_for_inference
from .framememo import device_frames


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """``n_out × n_in`` float64 weights: OpenCV's INTER_AREA when shrinking (each output pixel the
    average of the input it covers, fractions at its ends), INTER_LINEAR (half-pixel centres,
    clamped at the borders) when growing, the identity when the size stays."""
    weights = np.zeros((n_out, n_in))
    if n_out < n_in:
        scale = n_in / n_out
        for i in range(n_out):
            start, end = i * scale, (i + 1) * scale
            for j in range(int(np.floor(start)), min(n_in, int(np.ceil(end)))):
                weights[i, j] = (min(end, j + 1) - max(start, j)) / scale
    elif n_out > n_in:
        centres = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        left = np.floor(centres).astype(int)
        frac = centres - left
        rows = np.arange(n_out)
        np.add.at(weights, (rows, np.clip(left, 0, n_in - 1)), 1.0 - frac)
        np.add.at(weights, (rows, np.clip(left + 1, 0, n_in - 1)), frac)
    else:
        weights = np.eye(n_in)
    return weights


#: OpenCV's fixed-point BGR2GRAY for uint8, (B, G, R weights, shift): 4.x uses 14 bits, 5.x 15
GRAY_WEIGHTS = ((1868, 9617, 4899, 14), (3735, 19235, 9798, 15))
_gray_weights: tuple[int, int, int, int] | None = None


def gray_weights() -> tuple[int, int, int, int]:
    """The weights the installed OpenCV uses, found once by asking it (on 4096 random pixels)."""
    global _gray_weights
    if _gray_weights is None:
        import cv2

        pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        expected = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY).astype(np.int64)
        wide = pixels.astype(np.int64)
        for b, g, r, shift in GRAY_WEIGHTS:
            got = (wide[..., 0] * b + wide[..., 1] * g + wide[..., 2] * r + (1 << (shift - 1))) >> shift
            if np.array_equal(got, expected):
                _gray_weights = (b, g, r, shift)
                break
        else:  # an OpenCV with other weights: the nearest known ones (the guide is a motion hint)
            _gray_weights = GRAY_WEIGHTS[-1]
    return _gray_weights


def gray(bgr):
    """OpenCV's BGR2GRAY for uint8 (the installed OpenCV's fixed-point weights and rounding) of a
    3×h×w tensor of whole grey levels: h×w float32."""
    import torch

    b, g, r, shift = gray_weights()
    scale = float(1 << shift)
    return torch.floor((bgr[0] * float(b) + bgr[1] * float(g) + bgr[2] * float(r) + scale / 2) / scale)


def matches_opencv(height: int, width: int, h: int, w: int) -> bool:
    """Can :meth:`DeviceResizer.resize` give ``resize_for_inference``'s pixels for this size change?
    OpenCV picks one method for both axes from the height (area when it shrinks, linear when it
    grows); the weights here are per axis, so an axis going the other way differs (a frame whose
    short side is within a few pixels of the inference size, e.g. 447×298 to 448×288)."""
    if h < height:
        return w <= width
    if h > height:
        return w >= width
    return w == width


class DeviceResizer:
    """``resize(frame_bgr, (h, w))``: the frame uploaded and resized on ``device``, a 3×h×w float32
    BGR tensor of whole grey levels (OpenCV's ``resize_for_inference`` result, as a tensor)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self._weights: dict[tuple[int, int, int, int], tuple] = {}
        self._lock = threading.Lock()  # several inference workers may share an engine

    def _pair(self, height: int, width: int, h: int, w: int):
        key = (height, width, h, w)
        with self._lock:
            pair = self._weights.get(key)
            if pair is None:
                torch = self.torch
                rows = torch.tensor(resize_weights(height, h), dtype=torch.float32, device=self.device)
                cols_t = torch.tensor(resize_weights(width, w).T.copy(), dtype=torch.float32, device=self.device)
                if len(self._weights) >= 4:  # a few source sizes at most; drop the oldest
                    self._weights.pop(next(iter(self._weights)))
                pair = self._weights[key] = (rows, cols_t)
            return pair

    def resize(self, frame_bgr: np.ndarray, shape_hw: tuple[int, int], guide: bool = True):
        torch = self.torch
        image = torch.from_numpy(np.ascontiguousarray(frame_bgr)).to(self.device)  # H×W×3 uint8
        height, width = frame_bgr.shape[:2]
        h, w = shape_hw
        with torch.inference_mode():
            if not matches_opencv(height, width, h, w):  # rare: OpenCV's own resize, then up
                planes = torch.from_numpy(resize_for_inference(frame_bgr, (h, w))).to(self.device)
                planes = planes.permute(2, 0, 1).float()
            else:
                planes = image.permute(2, 0, 1).float()  # 3×H×W
            if planes.shape[1:] != (h, w):
                rows, cols_t = self._pair(height, width, h, w)
                planes = torch.matmul(torch.matmul(rows, planes), cols_t)
                if height == 2 * h and width == 2 * w:
                    planes.add_(0.5).floor_()  # OpenCV's exact halving rounds halves up
                else:
                    planes.round_()  # elsewhere its float path rounds them to even
                planes.clamp_(0.0, 255.0)
            memo = device_frames.entry(frame_bgr, dict)
            memo["image"] = image
            if guide and h <= height and w <= width:  # (growing, the host guide's INTER_AREA is not linear)
                memo[("guide", h, w)] = gray(planes)
        return planes
