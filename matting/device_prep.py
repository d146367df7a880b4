"""A frame's preparation on the engine's torch device: upload, OpenCV's resize, the gray motion guide.

On a GPU the CPU side of a frame (OpenCV's area resize of a 1080p frame to
MODNet's size, 5 ms, and the smoother's gray guide, 3 ms more) cost more than
the model itself. Here the frame goes up once as it is (uint8) and is resized
there by two small matrix products whose weights are OpenCV's: area
coverage when shrinking (``INTER_AREA``), half-pixel bilinear when growing
(``INTER_LINEAR``), the choice :func:`matting.engine.resize_for_inference`
makes. Results are rounded to whole grey levels as OpenCV's uint8 output is
(a test holds them within one level of OpenCV's). The frame on the device and
its guide are left in :data:`matting.framememo.device_frames` for the device
smoother and compositor, which would otherwise upload the frame again.
"""

from __future__ import annotations

import threading

import numpy as np

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


def gray(bgr):
    """OpenCV's BGR2GRAY for uint8 (its fixed-point weights and rounding) of a 3×h×w tensor of
    whole grey levels: h×w float32."""
    import torch

    b, g, r = bgr[0], bgr[1], bgr[2]
    return torch.floor((b * 1868.0 + g * 9617.0 + r * 4899.0 + 8192.0) / 16384.0)


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
            planes = image.permute(2, 0, 1).float()  # 3×H×W
            if (height, width) != (h, w):
                rows, cols_t = self._pair(height, width, h, w)
                # the smaller product first: height first when shrinking (3·h·H·W + 3·h·W·w)
                planes = torch.matmul(torch.matmul(rows, planes), cols_t).round_().clamp_(0.0, 255.0)
            memo = device_frames.entry(frame_bgr, dict)
            memo["image"] = image
            if guide and h <= height and w <= width:  # (growing, the host guide's INTER_AREA is not linear)
                memo[("guide", h, w)] = gray(planes)
        return planes
